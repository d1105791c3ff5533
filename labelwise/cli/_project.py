"""``labelwise project``: create, list and show projects; version their guidelines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy.orm import Session

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors, stderr
from labelwise.exceptions import InvalidInputError

if TYPE_CHECKING:
    from labelwise.service.store.schema import Project

__all__ = ["project_app"]

T = TypeVar("T")

project_app = typer.Typer(
    help="Projects: label sets, item fields, versioned guidelines, summaries.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Project name.", show_default=False)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")
]
ReadableFile = Annotated[
    Path,
    typer.Argument(
        exists=True,
        dir_okay=False,
        readable=True,
        metavar="FILE",
        help="Guideline text or markdown file.",
        show_default=False,
    ),
]


@contextmanager
def _store(db: str | None, *, write: bool) -> Iterator[Session]:
    """One session on ``db`` (migrated): a write transaction or a read-only one."""
    from labelwise.service.store import read_only, transaction

    engine, factory = open_store(db)
    try:
        with (transaction if write else read_only)(factory) as session:
            yield session
    finally:
        engine.dispose()


def _run(db: str | None, work: Callable[[Session], T], *, write: bool) -> T:
    with handle_errors(), _store(db, write=write) as session:
        return work(session)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"The guideline file must be readable UTF-8 text. Could not read {path}: "
            f"{exc}.",
            hint="Save the guideline as a UTF-8 text or markdown file.",
        ) from exc


@project_app.command("create")
def create(
    name: NameArg,
    labels: Annotated[
        str,
        typer.Option(
            help="Comma-separated label set, e.g. spam,ham.", show_default=False
        ),
    ],
    multi_label: Annotated[
        bool, typer.Option("--multi-label", help="An item may carry several labels.")
    ] = False,
    text_field: Annotated[
        str | None,
        typer.Option(help="The item field holding the text (default: text)."),
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option(help="Comma-separated item fields to show (tabular items)."),
    ] = None,
    guideline: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Guideline file, saved as version 1.",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create a project with its label set and the item fields to show."""
    from labelwise.service.store import create_project

    with handle_errors():
        if text_field is not None and fields is not None:
            raise InvalidInputError(
                "A project shows either one text field or a list of fields, not "
                f"both. Got --text-field {text_field} and --fields {fields}.",
                hint="Use --text-field for text items, or --fields for tabular items.",
            )
        text = _read(guideline) if guideline is not None else None

    def work(session: Session) -> str:
        project = create_project(
            session=session,
            name=name,
            labels=_split(labels),
            multi_label=multi_label,
            text_field=text_field,
            fields=_split(fields) if fields is not None else None,
            guideline=text,
        )
        shown = (
            f"text field {project.text_field!r}"
            if project.text_field
            else f"fields {', '.join(project.fields)}"
        )
        return (
            f"Created project {project.name!r}: labels {', '.join(project.labels)}"
            f"{' (multi-label)' if project.multi_label else ''}; {shown}"
            f"{'; guideline v1' if text is not None else ''}."
        )

    typer.echo(_run(db, work, write=True))
    stderr.print("Next: import items into it (`labelwise import --help`).")


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC (SQLite gives back naive datetimes, which are UTC)."""
    from labelwise.service.store.schema import as_utc

    return as_utc(moment).isoformat()


def _project_row(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "labels": list(project.labels),
        "multi_label": project.multi_label,
        "text_field": project.text_field,
        "fields": list(project.fields),
        "created_at": _iso(project.created_at),
    }


@project_app.command("list")
def list_(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the projects, by name."""
    from rich.console import Console
    from rich.table import Table

    from labelwise.service.store import list_projects

    rows = _run(
        db,
        lambda s: [_project_row(p) for p in list_projects(session=s)],
        write=False,
    )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        stderr.print(
            "No projects yet. Create one with "
            "`labelwise project create NAME --labels a,b`."
        )
        return
    table = Table("name", "labels", "multi-label", "shows")
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["labels"]),
            "yes" if row["multi_label"] else "no",
            row["text_field"] or ", ".join(row["fields"]),
        )
    Console(highlight=False).print(table)


@project_app.command("show")
def show(name: NameArg, as_json: JsonOption = False, db: DbOption = None) -> None:
    """Show a project's counts: items by role, labeled pool, labels and rounds."""
    from labelwise.service.store import get_project, project_summary

    summary = _run(
        db,
        lambda s: project_summary(session=s, project=get_project(session=s, name=name)),
        write=False,
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    kind = "multi-label" if summary["multi_label"] else "single-label"
    shows = (
        f"text field {summary['text_field']}"
        if summary["text_field"]
        else f"fields {', '.join(summary['fields'])}"
    )
    guideline = summary["guideline_version"]
    console.print(f"[bold]{escape(summary['name'])}[/] ({kind}; {escape(shows)})")
    console.print(
        f"guideline: {'v' + str(guideline) if guideline else 'none'}; "
        f"pool: {summary['labeled']} labeled, {summary['unlabeled']} unlabeled"
    )
    roles = Table("role", "items", title="Items")
    for role, n in summary["items_by_role"].items():
        roles.add_row(role, str(n))
    console.print(roles)
    labels = Table("label", "final labels", title="Labels")
    for label, n in summary["label_counts"].items():
        labels.add_row(escape(label), str(n))
    console.print(labels)
    if not summary["rounds"]:
        console.print("No rounds yet.")
        return
    rounds = Table("round", "created", "model", "policy", "selected", "by reason")
    for r in summary["rounds"]:
        rounds.add_row(
            str(r["number"]),
            r["created_at"][:19],
            (r["model_version"] or "cold start")[:12],
            r["policy_version"][:12],
            str(r["selected"]),
            ", ".join(f"{k} {v}" for k, v in r["counts_by_reason"].items()),
        )
    console.print(rounds)


@project_app.command("guideline")
def guideline(
    name: NameArg,
    file: ReadableFile,
    note: Annotated[
        str | None, typer.Option(help="What changed in this version.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Add a new guideline version from FILE (earlier versions are kept)."""
    from labelwise.service.store import add_guideline, get_project

    def work(session: Session) -> str:
        text = _read(file)
        project = get_project(session=session, name=name)
        version = add_guideline(
            session=session, project=project, text=text, note=note
        ).version
        return f"Saved guideline v{version} of project {project.name!r}."

    typer.echo(_run(db, work, write=True))
