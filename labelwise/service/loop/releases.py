"""Releases: freeze the final labels into an immutable, exportable dataset version.

:func:`create_release` snapshots every final label of the project (pool,
validation and failure items) with its provenance (annotator, time, the
round, reason, policy and model version that selected the item) into one
``releases`` row, with a manifest: counts per class, per selection reason and
per role, the policy and model versions involved, the date range of the
labels, the guideline versions, an agreement summary and the validation
metric of the model trained on the release's labels. A database trigger
refuses any UPDATE or DELETE of a release (migration 0004): there is no
update path. :func:`diff_releases` lists added, removed and changed labels;
:func:`rollback_to_release` resets the final labels to a release's while
every raw annotation stays; :func:`iter_release_rows` feeds the exporters.
docs/loop.md tells the whole story.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from labelwise.exceptions import ConflictError, InvalidInputError, NotFoundError
from labelwise.service.io._writers import ExportRow
from labelwise.service.io.exporter import label_provenance
from labelwise.service.loop.rounds import DEFAULT_MIN_LABELS
from labelwise.service.loop.training import (
    LabeledSet,
    default_model_name,
    item_features,
    record_model_version,
    train_model,
    version_hashes,
)
from labelwise.service.store.labels import encode_label
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Member,
    ModelVersion,
    Project,
    Release,
    ReleaseRollback,
    Round,
    as_utc,
    utcnow,
)

__all__ = [
    "MANIFEST_KEYS",
    "create_release",
    "diff_releases",
    "get_release",
    "iter_release_rows",
    "list_releases",
    "release_summary",
    "rollback_to_release",
]

#: The manifest keys ``labelwise release NAME --json`` promises, in order.
MANIFEST_KEYS = (
    "release_id",
    "created_at",
    "counts_by_label",
    "counts_by_reason",
    "policy_versions",
    "model_versions",
    "label_date_range",
    "guideline_versions",
    "agreement",
    "validation_metric",
)
#: The reason recorded for a label no round selected (a seed label, say).
UNSELECTED = "unselected"
_PAGE = 1000
_NOTE_MAX = 2000
_SEED_FOR_RELEASE_MODEL = 0


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def _next_release_id(session: Session, project: Project) -> str:
    # Lock the project row (PostgreSQL) so two releases cannot take one id.
    session.execute(
        select(Project.id).where(Project.id == project.id).with_for_update()
    )
    count = session.scalar(
        select(func.count())
        .select_from(Release)
        .where(Release.project_id == project.id)
    )
    return f"r{int(count or 0) + 1}"


def _rounds(session: Session, project: Project) -> dict[int, tuple[str, str | None]]:
    """Round number -> (policy version, model version) of every round."""
    rows = session.execute(
        select(Round.number, Round.policy_version, ModelVersion.version)
        .outerjoin(ModelVersion, ModelVersion.id == Round.model_version_id)
        .where(Round.project_id == project.id)
    )
    return {number: (policy, model) for number, policy, model in rows}


def _snapshot(
    session: Session, project: Project
) -> tuple[list[dict[str, Any]], set[int]]:
    """Every final label with its provenance, in item id order; guideline versions."""
    rounds = _rounds(session, project)
    query = (
        select(
            Item.id,
            Item.external_id,
            Item.role,
            FinalLabel.label,
            FinalLabel.method,
            FinalLabel.confidence,
            FinalLabel.n_annotations,
            FinalLabel.updated_at,
        )
        .join(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id)
    )
    entries: list[dict[str, Any]] = []
    guidelines: set[int] = set()
    last = 0
    while True:
        page = session.execute(
            query.where(Item.id > last).order_by(Item.id).limit(_PAGE)
        ).all()
        if not page:
            return entries, guidelines
        ids = [row.id for row in page]
        found = label_provenance(session, ids, {row.id: row.label for row in page})
        guidelines.update(
            version
            for version in session.scalars(
                select(Annotation.guideline_version)
                .where(
                    Annotation.item_id.in_(ids),
                    Annotation.guideline_version.is_not(None),
                )
                .distinct()
            )
            if version is not None
        )
        for item_id, external_id, role, label, method, conf, n, updated in page:
            provenance = found.get(item_id, {})
            number = provenance.get("round")
            model = rounds.get(number, (None, None))[1] if number is not None else None
            entries.append(
                {
                    "item_id": item_id,
                    "external_id": external_id,
                    "role": role,
                    "label": json.loads(label),
                    "method": method,
                    "confidence": conf,
                    "n_annotations": n,
                    "labeled_at": _iso(updated),
                    "annotator": provenance.get("annotator"),
                    "annotated_at": provenance.get("annotated_at"),
                    "round": number,
                    "reason": provenance.get("reason"),
                    "policy_version": provenance.get("policy_version"),
                    "model_version": model,
                }
            )
        last = page[-1].id


def _agreement(
    session: Session, project: Project, item_ids: set[int]
) -> dict[str, Any]:
    """Items of the release with 2+ annotator answers, and how many agree fully."""
    rows = session.execute(
        select(
            Annotation.item_id,
            func.count(),
            func.count(func.distinct(Annotation.label)),
        )
        .where(Annotation.project_id == project.id, Annotation.source == "queue")
        .group_by(Annotation.item_id)
        .having(func.count() >= 2)
    ).all()
    overlap = [(item, distinct) for item, _, distinct in rows if item in item_ids]
    agreed = sum(1 for _, distinct in overlap if distinct == 1)
    return {
        "items_with_overlap": len(overlap),
        "agreed": agreed,
        "share": round(agreed / len(overlap), 4) if overlap else None,
    }


def _validation_metric(
    session: Session, project: Project, entries: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Metrics on the validation set of the model trained on the release's labels.

    Reuses the model version trained on exactly these labels when one exists;
    otherwise trains it now (and records it). None when no model can be trained
    (multi-label, fewer than 10 labels or one class).
    """
    training = [e for e in entries if e["role"] in ("pool", "failure")]
    labels = [str(e["label"]) for e in training]
    if (
        project.multi_label
        or len(training) < DEFAULT_MIN_LABELS
        or len(set(labels)) < 2
    ):
        return None
    model_name = default_model_name(project)
    ids = [int(e["item_id"]) for e in training]
    version, _ = version_hashes(model_name, list(zip(ids, labels, strict=True)))
    row = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.version == version
        )
    )
    if row is None:
        wanted = [e for e in entries if e["role"] in ("pool", "failure", "validation")]
        fields: dict[int, dict[str, Any]] = dict(
            session.execute(
                select(Item.id, Item.fields).where(
                    Item.id.in_([int(e["item_id"]) for e in wanted])
                )
            ).all()
        )
        validation = [e for e in entries if e["role"] == "validation"]

        def labeled(part: list[dict[str, Any]]) -> LabeledSet:
            part_ids = [int(e["item_id"]) for e in part]
            return LabeledSet(
                part_ids,
                item_features(project, [fields[i] for i in part_ids]),
                [str(e["label"]) for e in part],
            )

        train_set = labeled(training)
        model = train_model(
            project=project,
            model_name=model_name,
            training=train_set,
            seed=_SEED_FOR_RELEASE_MODEL,
        )
        row = record_model_version(
            session=session,
            project=project,
            model_name=model_name,
            model=model,
            training=train_set,
            validation=labeled(validation),
        )
    metrics = dict(row.metrics or {})
    return {
        "model_version": row.version,
        "metric": "macro_f1",
        "value": metrics.get("macro_f1"),
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "n_validation": metrics.get("n_validation", 0),
        "calibration_error": row.calibration_error,
        "n_labels": row.n_labels,
    }


def _labels_hash(entries: list[dict[str, Any]]) -> str:
    pairs = [[e["external_id"], e["label"]] for e in entries]
    text = json.dumps(pairs, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _manifest(
    session: Session,
    project: Project,
    release_id: str,
    created_at: datetime,
    note: str | None,
    entries: list[dict[str, Any]],
    guidelines: set[int],
) -> dict[str, Any]:
    by_label: Counter[str] = Counter({str(label): 0 for label in project.labels})
    for entry in entries:
        label = entry["label"]
        for one in label if isinstance(label, list) else [label]:
            by_label[str(one)] += 1
    dates = sorted(e["labeled_at"] for e in entries if e["labeled_at"])
    return {
        "release_id": release_id,
        "created_at": _iso(created_at),
        "counts_by_label": dict(by_label),
        "counts_by_reason": dict(
            sorted(Counter(e["reason"] or UNSELECTED for e in entries).items())
        ),
        "policy_versions": sorted(
            {e["policy_version"] for e in entries if e["policy_version"]}
        ),
        "model_versions": sorted(
            {e["model_version"] for e in entries if e["model_version"]}
        ),
        "label_date_range": {
            "first": dates[0] if dates else None,
            "last": dates[-1] if dates else None,
        },
        "guideline_versions": sorted(guidelines),
        "agreement": _agreement(session, project, {e["item_id"] for e in entries}),
        "validation_metric": _validation_metric(session, project, entries),
        "project": project.name,
        "note": note,
        "n_labels": len(entries),
        "counts_by_role": dict(sorted(Counter(e["role"] for e in entries).items())),
        "counts_by_method": dict(sorted(Counter(e["method"] for e in entries).items())),
        "labels_hash": _labels_hash(entries),
    }


def create_release(
    *, session: Session, project: Project, note: str | None = None
) -> Release:
    """Freeze the project's final labels into a new immutable release ``r<n>``."""
    if note is not None and (not isinstance(note, str) or len(note) > _NOTE_MAX):
        raise InvalidInputError(
            f"A release note must be text of at most {_NOTE_MAX} characters. Got "
            f"{note!r:.80} instead.",
            hint="Say in a sentence what the release is for.",
        )
    release_id = _next_release_id(session, project)
    entries, guidelines = _snapshot(session, project)
    if not entries:
        raise ConflictError(
            f"A release freezes final labels, and project {project.name!r} has none "
            "yet.",
            hint=f"Label some items first (`labelwise import {project.name} FILE "
            "--role pool` with labels, or the label queue).",
        )
    created_at = utcnow()
    row = Release(
        project_id=project.id,
        release_id=release_id,
        note=note,
        manifest=_manifest(
            session, project, release_id, created_at, note, entries, guidelines
        ),
        labels=entries,
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return row


def list_releases(*, session: Session, project: Project) -> list[Release]:
    """The project's releases, oldest first."""
    return list(
        session.scalars(
            select(Release).where(Release.project_id == project.id).order_by(Release.id)
        )
    )


def get_release(*, session: Session, project: Project, release_id: str) -> Release:
    """The release ``release_id`` (e.g. ``r2``) of ``project``."""
    row = session.scalar(
        select(Release).where(
            Release.project_id == project.id, Release.release_id == release_id
        )
    )
    if row is None:
        known = [r.release_id for r in list_releases(session=session, project=project)]
        raise NotFoundError(
            f"No release {release_id!r} in project {project.name!r}; its releases: "
            f"{', '.join(known) or 'none'}.",
            hint=f"List them with `labelwise release list {project.name}`.",
        )
    return row


def release_summary(release: Release) -> dict[str, Any]:
    """One line of a release list: id, note, when, how many labels."""
    manifest = dict(release.manifest or {})
    return {
        "release_id": release.release_id,
        "created_at": _iso(release.created_at),
        "note": release.note,
        "n_labels": manifest.get("n_labels", len(release.labels or [])),
        "counts_by_label": manifest.get("counts_by_label", {}),
        "validation_metric": manifest.get("validation_metric"),
    }


def diff_releases(
    *, session: Session, project: Project, a: str, b: str
) -> dict[str, Any]:
    """Labels added, removed and changed from release ``a`` to release ``b``."""
    old = {
        e["external_id"]: e["label"]
        for e in get_release(session=session, project=project, release_id=a).labels
    }
    new = {
        e["external_id"]: e["label"]
        for e in get_release(session=session, project=project, release_id=b).labels
    }
    added = [{"external_id": k, "label": new[k]} for k in sorted(new.keys() - old)]
    removed = [{"external_id": k, "label": old[k]} for k in sorted(old.keys() - new)]
    changed = [
        {"external_id": k, "old": old[k], "new": new[k]}
        for k in sorted(old.keys() & new.keys())
        if old[k] != new[k]
    ]
    return {
        "project": project.name,
        "a": a,
        "b": b,
        "counts": {
            "added": len(added),
            "removed": len(removed),
            "changed": len(changed),
            "unchanged": len(old.keys() & new.keys()) - len(changed),
        },
        "added": added,
        "removed": removed,
        "changed": changed,
    }


def rollback_to_release(
    *,
    session: Session,
    project: Project,
    release_id: str,
    member: Member | None = None,
) -> dict[str, Any]:
    """Reset the final labels to the release's; every annotation stays.

    Final labels the release lacks are removed (those items are unlabeled
    again), others are restored with the release's label and method. The
    rollback is recorded (``release_rollbacks``).
    """
    release = get_release(session=session, project=project, release_id=release_id)
    wanted = {
        int(e["item_id"]): (encode_label(project, e["label"]), e)
        for e in release.labels
    }
    current = dict(
        session.execute(
            select(FinalLabel.item_id, FinalLabel.label).where(
                FinalLabel.project_id == project.id
            )
        ).all()
    )
    removed = sorted(current.keys() - wanted.keys())
    restored = sorted(wanted.keys() - current.keys())
    changed = sorted(
        item
        for item in wanted.keys() & current.keys()
        if current[item] != wanted[item][0]
    )
    rewrite = removed + changed
    for start in range(0, len(rewrite), _PAGE):
        session.execute(
            delete(FinalLabel).where(
                FinalLabel.item_id.in_(rewrite[start : start + _PAGE])
            ),
            execution_options={"synchronize_session": False},
        )
    now = utcnow()
    rows = [
        {
            "item_id": item,
            "project_id": project.id,
            "label": wanted[item][0],
            "method": wanted[item][1]["method"],
            "confidence": wanted[item][1].get("confidence"),
            "n_annotations": int(wanted[item][1].get("n_annotations") or 0),
            "updated_at": now,
        }
        for item in restored + changed
    ]
    for start in range(0, len(rows), _PAGE):
        session.execute(insert(FinalLabel), rows[start : start + _PAGE])
    counts = {
        "restored": len(restored),
        "changed": len(changed),
        "removed": len(removed),
        "unchanged": len(wanted) - len(restored) - len(changed),
    }
    session.add(
        ReleaseRollback(
            project_id=project.id,
            release_pk=release.id,
            release_id=release.release_id,
            member_id=None if member is None else member.id,
            counts=counts,
            created_at=now,
        )
    )
    session.flush()
    return {"project": project.name, "release_id": release.release_id, **counts}


def iter_release_rows(
    *,
    session: Session,
    project: Project,
    release: Release,
    role: str | None = None,
    page_size: int = _PAGE,
) -> Iterator[list[ExportRow]]:
    """Pages of export rows of a release's frozen labels (of ``role``)."""
    entries = [e for e in release.labels if role is None or e["role"] == role]
    for start in range(0, len(entries), page_size):
        page = entries[start : start + page_size]
        items = {
            item_id: (fields, source)
            for item_id, fields, source in session.execute(
                select(Item.id, Item.fields, Item.source).where(
                    Item.id.in_([int(e["item_id"]) for e in page])
                )
            )
        }
        yield [
            ExportRow(
                external_id=e["external_id"],
                role=e["role"],
                fields=items[int(e["item_id"])][0],
                label=e["label"],
                label_method=e["method"],
                annotator=e.get("annotator"),
                annotated_at=e.get("annotated_at"),
                round=e.get("round"),
                reason=e.get("reason"),
                policy_version=e.get("policy_version"),
                source=items[int(e["item_id"])][1] or {},
            )
            for e in page
        ]
