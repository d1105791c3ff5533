"""Projects and their versioned guidelines: create, look up, list, summarise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labelwise.exceptions import ConflictError, InvalidInputError, NotFoundError
from labelwise.service.store.labels import final_label_counts
from labelwise.service.store.schema import (
    ITEM_ROLES,
    FinalLabel,
    Guideline,
    Item,
    ModelVersion,
    Project,
    Round,
    Selection,
    as_utc,
)

__all__ = [
    "DEFAULT_TEXT_FIELD",
    "add_guideline",
    "create_project",
    "current_guideline",
    "get_project",
    "list_projects",
    "project_summary",
]

DEFAULT_TEXT_FIELD = "text"
_NAME_MAX = 200


def _check_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned or len(cleaned) > _NAME_MAX:
        raise InvalidInputError(
            f"A project name must be a non-empty string of at most {_NAME_MAX} "
            f"characters. Got {name!r} instead.",
            hint="Pick a short name such as 'spam-filter'.",
        )
    return cleaned


def _clean_list(values: list[str], *, what: str, flag: str) -> list[str]:
    """Strip every entry; refuse empty entries and duplicates."""
    if isinstance(values, str):
        values = values.split(",")
    cleaned = [v.strip() if isinstance(v, str) else "" for v in values]
    if any(not v for v in cleaned):
        raise InvalidInputError(
            f"Every {what} must be a non-empty string. Got {list(values)!r} instead.",
            hint=f"Remove the empty entries, e.g. {flag} a,b,c.",
        )
    duplicates = sorted({v for v in cleaned if cleaned.count(v) > 1})
    if duplicates:
        raise InvalidInputError(
            f"Each {what} must appear once. Got {', '.join(duplicates)} "
            "more than once.",
            hint=f"Remove the repeated entries from {flag}.",
        )
    return cleaned


def _project_names(session: Session) -> list[str]:
    return list(session.scalars(select(Project.name).order_by(Project.name)))


def create_project(
    *,
    session: Session,
    name: str,
    labels: list[str],
    multi_label: bool = False,
    text_field: str | None = None,
    fields: list[str] | None = None,
    guideline: str | None = None,
) -> Project:
    """Create a project with its label set, item fields and (optional) guideline v1."""
    name = _check_name(name)
    cleaned = _clean_list(labels, what="label", flag="--labels")
    minimum = 1 if multi_label else 2
    if len(cleaned) < minimum:
        kind = "A multi-label" if multi_label else "A single-label"
        raise InvalidInputError(
            f"{kind} project needs at least {minimum} distinct labels. "
            f"Got {len(cleaned)}: {cleaned!r}.",
            hint="List every label, e.g. --labels spam,ham.",
        )
    if text_field is not None and fields is not None:
        raise InvalidInputError(
            "A project shows either one text field or a list of fields, not both. "
            f"Got text_field={text_field!r} and fields={fields!r}.",
            hint="Use --text-field for text items, or --fields for tabular items.",
        )
    shown: list[str] = []
    if fields is not None:
        shown = _clean_list(fields, what="field", flag="--fields")
        if not shown:
            raise InvalidInputError(
                "--fields needs at least one field name. Got none.",
                hint="Name the item fields to show, e.g. --fields title,body.",
            )
    elif text_field is None:
        text_field = DEFAULT_TEXT_FIELD
    elif not text_field.strip():
        raise InvalidInputError(
            f"The text field must be a non-empty field name. Got {text_field!r}.",
            hint="Name the field that holds the text, e.g. --text-field body.",
        )
    else:
        text_field = text_field.strip()
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise _exists(name)
    project = Project(
        name=name,
        labels=cleaned,
        multi_label=bool(multi_label),
        text_field=text_field,
        fields=shown,
        settings={},
    )
    session.add(project)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise _exists(name) from exc
    if guideline is not None:
        add_guideline(session=session, project=project, text=guideline)
    return project


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"Cannot create project {name!r}: project {name!r} already exists "
        "(project names are unique).",
        hint=f"Pick another name or use `labelwise project show {name}`.",
    )


def get_project(*, session: Session, name: str) -> Project:
    """The project called ``name``; the error lists the existing names."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is not None:
        return project
    names = _project_names(session)
    existing = (
        f"Existing projects: {', '.join(names)}."
        if names
        else "There are no projects yet."
    )
    raise NotFoundError(
        f"No project named {name!r}. {existing}",
        hint=f"Check the name, or create it with "
        f"`labelwise project create {name} --labels a,b`.",
    )


def list_projects(*, session: Session) -> list[Project]:
    """Every project, by name."""
    return list(session.scalars(select(Project).order_by(Project.name)))


def add_guideline(
    *,
    session: Session,
    project: Project,
    text: str,
    note: str | None = None,
    member_id: int | None = None,
) -> Guideline:
    """Add the next guideline version of ``project``; older versions are kept."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(
            f"A guideline must be non-empty text. Got {text!r} for project "
            f"{project.name!r}.",
            hint="Write the guideline in a text or markdown file and pass it.",
        )
    # Lock the project row (PostgreSQL) so two writers cannot take the same
    # version; on SQLite BEGIN IMMEDIATE already serialises writers.
    session.execute(
        select(Project.id).where(Project.id == project.id).with_for_update()
    )
    latest = session.scalar(
        select(func.max(Guideline.version)).where(Guideline.project_id == project.id)
    )
    guideline = Guideline(
        project_id=project.id,
        version=(latest or 0) + 1,
        text=text,
        note=note,
        created_by=member_id,
    )
    session.add(guideline)
    try:
        session.flush()
    except IntegrityError as exc:  # pragma: no cover - needs a concurrent writer
        raise ConflictError(
            f"Guideline version {guideline.version} of project {project.name!r} "
            "was written by someone else at the same time.",
            hint="Run the command again; it will take the next version.",
        ) from exc
    return guideline


def current_guideline(*, session: Session, project: Project) -> Guideline | None:
    """The newest guideline version of ``project``, or None."""
    return session.scalar(
        select(Guideline)
        .where(Guideline.project_id == project.id)
        .order_by(Guideline.version.desc())
        .limit(1)
    )


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC (SQLite gives back naive datetimes, which are UTC)."""
    return as_utc(moment).isoformat()


def _rounds(session: Session, project: Project) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Round.id, Round.number, Round.created_at, Round.policy_version)
        .add_columns(ModelVersion.version)
        .outerjoin(ModelVersion, ModelVersion.id == Round.model_version_id)
        .where(Round.project_id == project.id)
        .order_by(Round.number)
    ).all()
    reasons: dict[int, dict[str, int]] = {}
    for round_id, reason, n in session.execute(
        select(Selection.round_id, Selection.reason, func.count())
        .join(Round, Round.id == Selection.round_id)
        .where(Round.project_id == project.id)
        .group_by(Selection.round_id, Selection.reason)
        .order_by(Selection.round_id, Selection.reason)
    ):
        reasons.setdefault(round_id, {})[reason] = int(n)
    return [
        {
            "round_id": round_id,
            "number": number,
            "created_at": _iso(created_at),
            "policy_version": policy_version,
            "model_version": model_version,
            "selected": sum(reasons.get(round_id, {}).values()),
            "counts_by_reason": reasons.get(round_id, {}),
        }
        for round_id, number, created_at, policy_version, model_version in rows
    ]


def project_summary(*, session: Session, project: Project) -> dict[str, Any]:
    """Counts of a project (items by role, labeled pool, labels, rounds) as JSON."""
    by_role = dict.fromkeys(ITEM_ROLES, 0)
    for role, n in session.execute(
        select(Item.role, func.count())
        .where(Item.project_id == project.id)
        .group_by(Item.role)
    ):
        by_role[role] = int(n)
    pool, labeled = session.execute(
        select(func.count(Item.id), func.count(FinalLabel.item_id))
        .select_from(Item)
        .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id, Item.role == "pool")
    ).one()
    guideline = current_guideline(session=session, project=project)
    return {
        "name": project.name,
        "labels": list(project.labels),
        "multi_label": project.multi_label,
        "text_field": project.text_field,
        "fields": list(project.fields),
        "guideline_version": guideline.version if guideline else None,
        "items_by_role": by_role,
        "labeled": int(labeled),
        "unlabeled": int(pool) - int(labeled),
        "label_counts": final_label_counts(session=session, project=project),
        "rounds": _rounds(session, project),
    }
