"""Request and response bodies: ``…Create`` / ``…Update`` in, ``…Public`` out.

Public schemas never carry a password or token hash; the only bodies with a
password or token in clear are :class:`MemberCreated` and :class:`TokenPublic`,
returned once when they are made.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from labelwise.service.store.schema import as_utc

if TYPE_CHECKING:
    from labelwise.service.store.schema import Annotation, Lease

__all__ = [
    "AnnotationCreate",
    "AnnotationPublic",
    "AnnotationRow",
    "ClaimItem",
    "ClaimPublic",
    "ErrorBody",
    "ErrorDetail",
    "FlagCreate",
    "HealthPublic",
    "ItemPublic",
    "LeasePublic",
    "MePublic",
    "MemberCreate",
    "MemberCreated",
    "MemberPublic",
    "MemberUpdate",
    "Page",
    "ProjectCreate",
    "ProjectMemberAdd",
    "ProjectMemberPublic",
    "ProjectPublic",
    "ProjectSummary",
    "QueueStatusPublic",
    "Role",
    "RoundCreate",
    "RoundPublic",
    "RoundSummaryPublic",
    "TokenPublic",
    "UTCDateTime",
]

T = TypeVar("T")
Role = Literal["admin", "lead", "reviewer", "annotator"]
LabelValue = str | list[str]


UTCDateTime = Annotated[datetime, AfterValidator(as_utc)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    """The inside of every error body."""

    code: str = Field(description="Stable machine-readable code, e.g. lease_expired.")
    message: str = Field(description="What was expected and what was given.")
    hint: str | None = Field(description="What to do about it.")
    details: list[Any] = Field(
        description="Per-field problems (422), bad records (import), or empty."
    )


class ErrorBody(BaseModel):
    """The one JSON error body of the API."""

    error: ErrorDetail


class HealthPublic(_Out):
    """The service is up and its database answers."""

    status: Literal["ok"]
    version: str
    database: Literal["sqlite", "postgresql"]


class MemberPublic(_Out):
    """A member as others see it."""

    name: str
    role: Role
    active: bool
    created_at: UTCDateTime


class MePublic(MemberPublic):
    """The caller, with the names of its projects."""

    projects: list[str]


class MemberCreate(_In):
    """A new member; its password and token are generated."""

    name: str = Field(min_length=1, max_length=200)
    role: Role
    project: str | None = Field(
        default=None, description="A project to add the new member to."
    )


class MemberCreated(MemberPublic):
    """A new member with its one-time password and API token (shown once)."""

    password: str
    token: str


class MemberUpdate(_In):
    """A change of role and/or active flag."""

    role: Role | None = None
    active: bool | None = None


class TokenPublic(_Out):
    """A new API token (shown once)."""

    name: str
    token: str


class ProjectCreate(_In):
    """A new project: its label set and the item fields to show."""

    name: str = Field(min_length=1, max_length=200)
    labels: list[str] = Field(min_length=1)
    multi_label: bool = False
    text_field: str | None = None
    fields: list[str] | None = None
    guideline: str | None = Field(default=None, description="Guideline text (v1).")


class ProjectPublic(_Out):
    """A project's definition."""

    name: str
    labels: list[str]
    multi_label: bool
    text_field: str | None
    fields: list[str]
    created_at: UTCDateTime


class RoundPublic(_Out):
    """One round of a project, with its picks per reason."""

    round_id: int
    number: int
    created_at: UTCDateTime
    policy_version: str
    model_version: str | None
    selected: int
    counts_by_reason: dict[str, int]


class ProjectSummary(_Out):
    """A project's counts: items by role, labeled pool, label counts, rounds."""

    name: str
    labels: list[str]
    multi_label: bool
    text_field: str | None
    fields: list[str]
    guideline_version: int | None
    items_by_role: dict[str, int]
    labeled: int
    unlabeled: int
    label_counts: dict[str, int]
    rounds: list[RoundPublic]


class ProjectMemberAdd(_In):
    """An existing member to add to a project."""

    name: str = Field(min_length=1, max_length=200)


class ProjectMemberPublic(_Out):
    """A member of a project."""

    project: str
    name: str
    role: Role
    added: bool = Field(description="False when the member already belonged to it.")


class ItemPublic(_Out):
    """An item: stable external id, role and payload."""

    id: int
    external_id: str
    role: str
    fields: dict[str, Any]
    created_at: UTCDateTime


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paged list; pass ``next`` back as ``cursor``."""

    items: list[T]
    next: str | None = Field(description="Cursor of the next page; null at the end.")


class RoundCreate(_In):
    """A round to run now: batch size, policy and seed."""

    batch_size: int = Field(default=50, ge=1, le=100_000)
    policy: str | dict[str, Any] = Field(
        default="default",
        description="A policy name (see `labelwise policies`) or a policy spec "
        "object (BatchPolicy.to_dict()).",
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class RoundSummaryPublic(_Out):
    """What a round did."""

    round_id: int
    round_number: int
    model_version: str | None
    policy_version: str
    policy: str
    mode: str
    selected: int
    counts_by_reason: dict[str, int]
    metrics: dict[str, Any]


class ClaimItem(_Out):
    """The item of a lease, as the annotator sees it."""

    id: int
    external_id: str
    fields: dict[str, Any]


class ClaimPublic(_Out):
    """A lease on the next item for the caller."""

    lease_id: int
    item: ClaimItem
    expires_at: UTCDateTime
    reason: str


class AnnotationCreate(_In):
    """The caller's answer for a leased item."""

    label: LabelValue
    time_spent_ms: int | None = Field(default=None, ge=0, le=2**31 - 1)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Send the same key again to replay safely: 200, same id.",
    )


class AnnotationPublic(_Out):
    """A saved annotation."""

    id: int
    lease_id: int | None
    item_id: int
    label: LabelValue
    created_at: UTCDateTime

    @classmethod
    def from_annotation(cls, annotation: Annotation) -> AnnotationPublic:
        """The public form of a stored annotation (its label decoded)."""
        return cls(
            id=annotation.id,
            lease_id=annotation.lease_id,
            item_id=annotation.item_id,
            label=json.loads(annotation.label),
            created_at=annotation.created_at,
        )


class FlagCreate(_In):
    """A flag on a leased item, e.g. ambiguous or guideline_gap."""

    flag: str = Field(min_length=1, max_length=30)
    note: str | None = Field(default=None, max_length=10_000)


class LeasePublic(_Out):
    """A lease's state after skip, flag or renew."""

    lease_id: int
    status: str
    expires_at: UTCDateTime | None = None

    @classmethod
    def from_lease(cls, lease: Lease) -> LeasePublic:
        """The public form of a lease."""
        return cls(lease_id=lease.id, status=lease.status, expires_at=lease.expires_at)


class QueueStatusPublic(_Out):
    """Queue counts of a project, and the caller's own (leases, today, caps)."""

    model_config = ConfigDict(extra="allow")

    project: str
    open_entries: int = Field(description="Queue entries still wanting annotators.")
    remaining: int = Field(description="Annotations still wanted by open entries.")
    active_leases: int
    flagged: int
    done_today: int
    member: dict[str, Any] | None


class AnnotationRow(_Out):
    """One annotation of a project, with who, when, why and how long."""

    id: int
    item_id: int
    external_id: str
    annotator: str | None
    label: Any
    created_at: UTCDateTime
    time_spent_ms: int | None
    reason: str | None
    round_id: int | None
    flag: str | None
