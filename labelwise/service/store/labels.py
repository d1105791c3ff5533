"""Labels as stored (JSON text) and final labels: encode, decode, upsert, count."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from labelwise.exceptions import InvalidInputError, NotFoundError
from labelwise.service.store.schema import FinalLabel, Item, Project, utcnow

__all__ = [
    "FINAL_LABEL_METHODS",
    "LabelValue",
    "decode_label",
    "encode_label",
    "final_label_counts",
    "set_final_label",
]

#: A label as code sees it: one project label, or a list of them (multi-label).
LabelValue = str | list[str]

#: How a final label was resolved (``FinalLabel.method``).
FINAL_LABEL_METHODS = (
    "adjudicated",
    "agreement",
    "dawid_skene",
    "majority",
    "seed",
    "single",
)


def _valid_labels(project: Project) -> str:
    return ", ".join(str(label) for label in project.labels)


def _check_one(project: Project, value: object) -> str:
    if isinstance(value, str) and value.strip() in project.labels:
        return value.strip()
    raise InvalidInputError(
        f"Project {project.name!r} expects one of its labels: "
        f"{_valid_labels(project)}. Got {value!r} instead.",
        hint="Use one of those labels exactly, or add the label to the project "
        "by creating a new one (`labelwise project create`).",
    )


def _normalize(project: Project, value: object) -> LabelValue:
    if not project.multi_label:
        return _check_one(project, value)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInputError(
            f"Project {project.name!r} is multi-label and expects a list of its "
            f"labels ({_valid_labels(project)}). Got {value!r} instead.",
            hint=f"Pass a list, e.g. [{str(project.labels[0])!r}], or [] for none.",
        )
    return sorted({_check_one(project, one) for one in value})


def encode_label(project: Project, value: object) -> str:
    """The stored text of ``value``: json.dumps of a label or a sorted label list."""
    return json.dumps(_normalize(project, value))


def decode_label(project: Project, text: str) -> LabelValue:
    """The label (or sorted label list) stored as ``text``, checked for the project."""
    try:
        value: Any = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"A stored label must be JSON text such as '\"spam\"'. Got {text!r} "
            f"in project {project.name!r} instead.",
            hint="Re-import or re-label the item; labels are written by "
            "labelwise.service.store.labels.encode_label.",
        ) from exc
    return _normalize(project, value)


def decode_label_text(text: str | None) -> Any:
    """A stored label's JSON text decoded as it is, to show or count it.

    Unlike :func:`decode_label` nothing is checked against a project: a label
    the project no longer has still decodes, text that is not JSON comes back
    unchanged, and None stays None.
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def set_final_label(
    *,
    session: Session,
    item: Item,
    label: object,
    method: str,
    confidence: float | None = None,
    n_annotations: int = 1,
) -> FinalLabel:
    """Set (insert or replace) the final label of ``item``."""
    if method not in FINAL_LABEL_METHODS:
        raise InvalidInputError(
            f"A final label's method must be one of {', '.join(FINAL_LABEL_METHODS)}. "
            f"Got {method!r} instead.",
            hint="Pick the method that resolved the label, e.g. 'majority'.",
        )
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise InvalidInputError(
            f"A final label's confidence must be in [0, 1] or None. Got {confidence!r} "
            "instead.",
            hint="Pass a probability, or None when it is unknown.",
        )
    if isinstance(n_annotations, bool) or n_annotations < 0:
        raise InvalidInputError(
            f"n_annotations must be an int >= 0. Got {n_annotations!r} instead.",
            hint="Pass how many annotations the final label was resolved from.",
        )
    project = session.get(Project, item.project_id)
    if project is None:  # pragma: no cover - the foreign key forbids it
        raise NotFoundError(
            f"Item {item.external_id!r} names project id {item.project_id}, "
            "which does not exist.",
            hint="Check the database's integrity.",
        )
    values = {
        "item_id": item.id,
        "project_id": item.project_id,
        "label": encode_label(project, label),
        "method": method,
        "confidence": confidence,
        "n_annotations": n_annotations,
        "updated_at": utcnow(),
    }
    insert = (
        postgresql_insert
        if session.get_bind().dialect.name == "postgresql"
        else sqlite_insert
    )
    statement = insert(FinalLabel).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[FinalLabel.item_id],
        set_={k: v for k, v in values.items() if k != "item_id"},
    )
    session.execute(statement)
    final = session.get(FinalLabel, item.id, populate_existing=True)
    assert final is not None
    return final


def final_label_counts(*, session: Session, project: Project) -> dict[str, int]:
    """Final labels per project label (every label present, zeros included).

    A multi-label item counts once for each label it carries. Stored labels
    that are no longer project labels are counted under their own name.
    """
    counts = {str(label): 0 for label in project.labels}
    rows = session.execute(
        select(FinalLabel.label, func.count())
        .where(FinalLabel.project_id == project.id)
        .group_by(FinalLabel.label)
    )
    for text, n in rows:
        value = decode_label_text(text)
        for label in value if isinstance(value, list) else [value]:
            counts[str(label)] = counts.get(str(label), 0) + int(n)
    return counts
