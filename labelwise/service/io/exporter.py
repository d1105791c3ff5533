"""``export_project``: items, final labels and provenance, streamed to a file.

Items are read in pages by keyset pagination (``id > last``); each page costs
two queries (the items with their final labels, then their annotations with
round, selection and member), never one per item. The file is written under
a temporary name and renamed when complete, so a failed export leaves no
half-written file behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from labelwise.exceptions import InvalidInputError
from labelwise.service.io._readers import FORMATS
from labelwise.service.io._writers import ExportRow, ExportSpec, write_rows
from labelwise.service.store.schema import (
    ITEM_ROLES,
    Annotation,
    FinalLabel,
    Item,
    Member,
    Project,
    Round,
    Selection,
)

__all__ = [
    "EXPORT_FORMATS",
    "export_project",
    "iter_export_rows",
    "label_provenance",
    "write_export",
]

#: What ``labelwise export --format`` accepts.
EXPORT_FORMATS = FORMATS
_PAGE = 1000


def _iso(moment: Any) -> str | None:
    """A timestamp as ISO 8601 text: datetimes (naive = UTC), epoch seconds, text."""
    if moment is None or isinstance(moment, bool):
        return None
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return str(moment.astimezone(UTC).isoformat())
    if isinstance(moment, int | float):
        try:
            return datetime.fromtimestamp(moment, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return str(moment)
    return str(moment)


def _decode(text: str | None) -> str | list[str] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, list) else str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _annotations(
    session: Session, item_ids: list[int], finals: dict[int, str | None]
) -> dict[int, dict[str, Any]]:
    """Per item, the provenance of the annotation behind its final label."""
    rows = session.execute(
        select(
            Annotation.item_id,
            Annotation.label,
            Annotation.source,
            Annotation.provenance,
            Annotation.created_at,
            Annotation.reason,
            Member.name,
            Round.number,
            Round.policy_version,
            Selection.reason,
        )
        .outerjoin(Member, Member.id == Annotation.member_id)
        .outerjoin(Round, Round.id == Annotation.round_id)
        .outerjoin(
            Selection,
            and_(
                Selection.round_id == Annotation.round_id,
                Selection.item_id == Annotation.item_id,
            ),
        )
        .where(Annotation.item_id.in_(item_ids))
        .order_by(Annotation.item_id, Annotation.id)
    ).all()
    chosen: dict[int, dict[str, Any]] = {}
    for (
        item_id,
        label,
        source,
        provenance,
        created_at,
        reason,
        member,
        number,
        policy_version,
        selection_reason,
    ) in rows:
        current = chosen.get(item_id)
        matches = label == finals.get(item_id)
        if current is not None and current["matches"] and not matches:
            continue
        provenance = provenance or {}
        imported = source == "import"
        chosen[item_id] = {
            "matches": matches,
            "annotator": _text(member or provenance.get("annotator")),
            "annotated_at": _iso(
                provenance.get("timestamp") if imported else created_at
            ),
            "round": number,
            "reason": reason or selection_reason,
            "policy_version": policy_version,
        }
    return chosen


def iter_export_rows(
    *,
    session: Session,
    project: Project,
    role: str | None = None,
    page_size: int = _PAGE,
) -> Iterator[list[ExportRow]]:
    """Pages of export rows of ``project`` (of ``role``), in item id order."""
    query = (
        select(
            Item.id,
            Item.external_id,
            Item.role,
            Item.fields,
            Item.source,
            Item.gold_label,
            FinalLabel.label,
            FinalLabel.method,
        )
        .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id)
    )
    if role is not None:
        query = query.where(Item.role == role)
    last = 0
    while True:
        page = session.execute(
            query.where(Item.id > last).order_by(Item.id).limit(page_size)
        ).all()
        if not page:
            return
        finals = {row.id: row.label for row in page}
        found = _annotations(session, [row.id for row in page], finals)
        rows: list[ExportRow] = []
        for (
            item_id,
            external_id,
            item_role,
            fields,
            source,
            gold,
            label,
            method,
        ) in page:
            source = source or {}
            provenance = found.get(item_id, {})
            if label is None and gold is not None:
                label, method = gold, "gold"
                kept = source.get("label_provenance") or [{}]
                provenance = {
                    "annotator": _text(kept[-1].get("annotator")),
                    "annotated_at": _iso(kept[-1].get("timestamp")),
                }
            rows.append(
                ExportRow(
                    external_id=external_id,
                    role=item_role,
                    fields=fields,
                    label=_decode(label),
                    label_method=method,
                    annotator=provenance.get("annotator"),
                    annotated_at=provenance.get("annotated_at"),
                    round=provenance.get("round"),
                    reason=provenance.get("reason"),
                    policy_version=provenance.get("policy_version"),
                    source=source,
                )
            )
        yield rows
        last = page[-1].id


def _spec(project: Project) -> ExportSpec:
    fields = (project.text_field,) if project.text_field else tuple(project.fields)
    return ExportSpec(
        name=project.name,
        labels=tuple(str(label) for label in project.labels),
        multi_label=bool(project.multi_label),
        text_field=project.text_field,
        fields=fields,
    )


def _no_tick() -> None:
    return None


def export_project(
    *,
    session: Session,
    project: Project,
    path: str | Path,
    format: str,
    role: str | None = None,
    progress: Callable[[], None] | None = None,
) -> int:
    """Write the items of ``project`` (of ``role``) to ``path``; how many were written.

    ``progress`` is called once per item written.
    """
    if format not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"Unknown export format {format!r}; valid formats: "
            f"{', '.join(EXPORT_FORMATS)}.",
            hint="Pass one of them with --format.",
        )
    if role is not None and role not in ITEM_ROLES:
        raise InvalidInputError(
            f"An item role must be one of {', '.join(ITEM_ROLES)}. Got {role!r}.",
            hint="Pass --role pool, validation, gold or failure, or leave it out "
            "to export every item.",
        )
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidInputError(
            f"Cannot export to {str(path)!r}: the folder {str(target.parent)!r} "
            "does not exist.",
            hint="Create the folder first, or pick another --out.",
        )
    pages = iter_export_rows(session=session, project=project, role=role)
    return write_export(
        pages, project=project, path=target, format=format, progress=progress
    )


def write_export(
    pages: Iterable[list[ExportRow]],
    *,
    project: Project,
    path: str | Path,
    format: str,
    progress: Callable[[], None] | None = None,
) -> int:
    """Write export ``pages`` to ``path`` under a temporary name, then rename it."""
    if format not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"Unknown export format {format!r}; valid formats: "
            f"{', '.join(EXPORT_FORMATS)}.",
            hint="Pass one of them with --format.",
        )
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidInputError(
            f"Cannot export to {str(path)!r}: the folder {str(target.parent)!r} "
            "does not exist.",
            hint="Create the folder first, or pick another --out.",
        )
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        count = write_rows(pages, partial, format, _spec(project), progress or _no_tick)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return count


def label_provenance(
    session: Session, item_ids: list[int], finals: dict[int, str | None]
) -> dict[int, dict[str, Any]]:
    """Per item, the annotator, time, round, reason and policy of its final label."""
    return _annotations(session, item_ids, finals)
