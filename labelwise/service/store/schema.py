"""SQLAlchemy 2 tables and mapped classes: the nouns of DESIGN.md "Concepts".

Projects hold items (role ``pool``, ``validation``, ``gold`` or ``failure``);
rounds record which model and policy version ranked the pool and every item
they selected with its reason and score; annotations are raw answers (seed
labels from imports, or annotators' answers); final labels are resolved from
them; queue entries and leases hand the selected items to annotators; model
versions and releases version what was trained and shipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ITEM_ROLES",
    "MEMBER_ROLES",
    "Annotation",
    "Base",
    "CalibrationAnswer",
    "CalibrationItem",
    "CalibrationSession",
    "FinalLabel",
    "Guideline",
    "Item",
    "Lease",
    "Member",
    "ModelVersion",
    "Project",
    "ProjectMember",
    "QueueEntry",
    "Release",
    "ReleaseRollback",
    "Round",
    "Selection",
    "TrainingJob",
    "as_utc",
    "utcnow",
]

ITEM_ROLES = ("pool", "validation", "gold", "failure")
MEMBER_ROLES = ("admin", "lead", "reviewer", "annotator")

# Stable constraint names, so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as timezone-aware UTC; None stays None.

    SQLite gives stored times back naive (they are UTC), PostgreSQL aware in
    the session's time zone: a naive time is taken as UTC, an aware one is
    converted to it.
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's documented idiom
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Project(Base):
    """A labeling task: its label set, the item fields to show, its guideline."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    labels: Mapped[list[Any]] = mapped_column(JSON)
    multi_label: Mapped[bool] = mapped_column(Boolean, default=False)
    text_field: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    guidelines: Mapped[list[Guideline]] = relationship(
        back_populates="project", order_by="Guideline.version"
    )


class Guideline(Base):
    """One version of a project's guideline; a new version never overwrites."""

    __tablename__ = "guidelines"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(back_populates="guidelines")


class Item(Base):
    """One unit of work with a stable external id, a payload and a role."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        Index("ix_items_project_role", "project_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    external_id: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(20))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Where the item came from: format, file, line, Label Studio id, Prodigy hashes.
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The reference answer of a gold item (JSON-encoded label).
    gold_label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Member(Base):
    """A person with a role; passwords and tokens are stored hashed only."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    """Membership of a member in a project."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """A model trained on a known set of final labels, scored on the validation set."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    #: Content hash of (model spec, labels seen): the "model version" string.
    version: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(100))
    n_labels: Mapped[int] = mapped_column(Integer)
    labels_hash: Mapped[str] = mapped_column(String(64))
    calibration_method: Mapped[str | None] = mapped_column(String(30))
    calibration_error: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="done")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Round(Base):
    """One ranking of the pool: which model and policy built which batch, when."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id")
    )
    policy_version: Mapped[str] = mapped_column(String(64))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int | None] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer)
    #: "cold_start" when no model could be trained yet, else "model".
    mode: Mapped[str] = mapped_column(String(20), default="model")
    counts_by_reason: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    selections: Mapped[list[Selection]] = relationship(
        back_populates="round", order_by="Selection.rank"
    )


class Selection(Base):
    """An item a round picked, why (reason, strategy) and its score at the time."""

    __tablename__ = "selections"
    __table_args__ = (
        UniqueConstraint("round_id", "item_id"),
        Index("ix_selections_item", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    reason: Mapped[str] = mapped_column(String(30))
    strategy: Mapped[str] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)

    round: Mapped[Round] = relationship(back_populates="selections")


class Annotation(Base):
    """A raw answer: an annotator's label, or a seed label from an import."""

    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_project_id", "project_id", "id"),
        Index("ix_annotations_item", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    #: The label, JSON-encoded: a string, or a sorted list for multi-label projects.
    label: Mapped[str] = mapped_column(Text)
    #: "import" (seed label), "queue" (an annotator), "review" (adjudication).
    source: Mapped[str] = mapped_column(String(20))
    #: Who said it outside labelwise (Label Studio/Prodigy annotator), file, line, ...
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    reason: Mapped[str | None] = mapped_column(String(30))
    time_spent_ms: Mapped[int | None] = mapped_column(Integer)
    guideline_version: Mapped[int | None] = mapped_column(Integer)
    flag: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The lease a queue annotation was submitted under (None for other sources).
    lease_id: Mapped[int | None] = mapped_column(ForeignKey("leases.id"))


class FinalLabel(Base):
    """The resolved label of an item, with its method and confidence."""

    __tablename__ = "final_labels"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    label: Mapped[str] = mapped_column(Text)
    #: "seed", "single", "agreement", "majority", "dawid_skene", "adjudicated".
    method: Mapped[str] = mapped_column(String(30))
    confidence: Mapped[float | None] = mapped_column(Float)
    n_annotations: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Release(Base):
    """A frozen, exportable dataset version with its manifest."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "release_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    release_id: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The frozen labels: [{"item_id", "external_id", "label", "method", ...}].
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueueEntry(Base):
    """An item of a round waiting in the label queue, with its annotator counts.

    ``target`` distinct annotators are wanted; ``active`` counts the entry's
    active leases and ``done`` its submitted ones. Only ``"open"`` entries are
    served; a new round marks the idle ones ``"superseded"``.
    """

    __tablename__ = "queue_entries"
    __table_args__ = (
        UniqueConstraint("round_id", "item_id"),
        Index("ix_queue_entries_project_status_rank", "project_id", "status", "rank"),
        Index("ix_queue_entries_item", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    rank: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(30))
    target: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    #: "open" or "superseded".
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """One member's hold on one item until ``expires_at``; a row is never reused."""

    __tablename__ = "leases"
    __table_args__ = (
        UniqueConstraint("item_id", "member_id"),
        Index("ix_leases_project_status_expires", "project_id", "status", "expires_at"),
        Index("ix_leases_member_created", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    #: None for gold items, which are served outside the rounds.
    queue_entry_id: Mapped[int | None] = mapped_column(ForeignKey("queue_entries.id"))
    #: The selection reason, or "gold".
    reason: Mapped[str] = mapped_column(String(30))
    #: "active", "submitted", "skipped", "flagged" or "expired".
    status: Mapped[str] = mapped_column(String(20), default="active")
    #: "ambiguous", "guideline_gap" or "other" on a flagged lease.
    flag: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class CalibrationSession(Base):
    """A calibration session: 20 to 50 tough items every annotator labels blind.

    Its answers live in ``calibration_answers``, never in ``annotations``, so a
    session never changes a final label. Closing it may publish a guideline
    version (``published_guideline_version``).
    """

    __tablename__ = "calibration_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: "manual", "most_disputed" or "most_uncertain".
    rule: Mapped[str] = mapped_column(String(30))
    #: "open" or "closed".
    status: Mapped[str] = mapped_column(String(20), default="open")
    #: The guideline version current when the session was created.
    guideline_version: Mapped[int | None] = mapped_column(Integer)
    published_guideline_version: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()


class CalibrationItem(Base):
    """An item of a calibration session, in the order annotators see them."""

    __tablename__ = "calibration_items"
    __table_args__ = (UniqueConstraint("session_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("calibration_sessions.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    position: Mapped[int] = mapped_column(Integer)


class CalibrationAnswer(Base):
    """One member's blind answer to one item of a calibration session."""

    __tablename__ = "calibration_answers"
    __table_args__ = (UniqueConstraint("session_id", "item_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("calibration_sessions.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    #: The label, JSON-encoded like Annotation.label.
    label: Mapped[str] = mapped_column(Text)
    time_spent_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingJob(Base):
    """A request to retrain, score the pool and swap the queue to the next round.

    ``status`` goes queued → training → done or failed (with ``error``). A
    worker claims a queued job with one conditional UPDATE, so two server
    processes never train the same job. ``pending_project_id`` holds the
    project id while the job is queued or training and None after: its
    UNIQUE constraint allows one pending job per project.
    """

    __tablename__ = "training_jobs"
    __table_args__ = (
        UniqueConstraint("pending_project_id"),
        Index("ix_training_jobs_project_id_id", "project_id", "id"),
        Index("ix_training_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    #: "queued", "training", "done" or "failed".
    status: Mapped[str] = mapped_column(String(20), default="queued")
    #: "click" (a lead), "auto" (every N new final labels), "api" or "cli".
    trigger: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    #: The round's batch_size, policy (name or spec) and seed.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pending_project_id: Mapped[int | None] = mapped_column(Integer)
    #: Final labels (pool and failure items) when the job was requested.
    n_final_labels: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(100))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id")
    )
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class ReleaseRollback(Base):
    """A reset of a project's final labels to a release's; annotations are kept."""

    __tablename__ = "release_rollbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    release_pk: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    release_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    #: {"restored": n, "changed": n, "removed": n, "unchanged": n}
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PoolSource(Base):
    """Parquet files registered as a project's pool instead of imported (#8).

    A round streams the files; only the items it selects (and later their
    labels) are materialised as ``items`` rows, with ``external_id`` read
    from ``id_column``.
    """

    __tablename__ = "pool_sources"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: A file, folder or glob (local or an fsspec URL), resolved at each round.
    path: Mapped[str] = mapped_column(Text)
    id_column: Mapped[str] = mapped_column(String(200))
    feature_columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    text_column: Mapped[str | None] = mapped_column(String(200))
    #: Files and rows when registered (the files may grow later).
    n_files: Mapped[int] = mapped_column(Integer, default=0)
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
