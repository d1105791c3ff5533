"""``labelwise import`` and ``labelwise export``: files into and out of a project."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors
from labelwise.cli._progress import run_with_progress

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from labelwise.service.store.schema import Project

__all__ = ["export_command", "import_command"]


class Role(StrEnum):
    """Item roles (DESIGN.md "Concepts")."""

    pool = "pool"
    validation = "validation"
    gold = "gold"
    failure = "failure"


class ImportFormat(StrEnum):
    """Formats ``labelwise import`` reads; auto goes by the file's suffix."""

    auto = "auto"
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"
    label_studio = "label-studio"
    prodigy = "prodigy"


class ExportFormat(StrEnum):
    """Formats ``labelwise export`` writes."""

    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"
    label_studio = "label-studio"
    prodigy = "prodigy"


NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Project name.", show_default=False)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the report as one JSON object.")
]


def import_command(
    name: NameArg,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A .csv, .jsonl, .parquet, Label Studio .json or Prodigy .jsonl file.",
            show_default=False,
        ),
    ],
    role: Annotated[
        Role,
        typer.Option(
            help="Role of the imported items; validation and gold need labels.",
            show_default=False,
        ),
    ],
    format: Annotated[
        ImportFormat,
        typer.Option(
            "--format",
            help="File format; auto: by suffix (.json = Label Studio; .jsonl whose "
            "first record has _input_hash or answer = Prodigy).",
        ),
    ] = ImportFormat.auto,
    id_field: Annotated[
        str | None,
        typer.Option(
            help="Column holding the external id (default: external_id or id, else "
            "a content hash).",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Keep only records whose 'split' column equals this."),
    ] = None,
    ignore_labels: Annotated[
        bool,
        typer.Option(
            "--ignore-labels",
            help="Import the items without their labels (replay a labeled file as "
            "an unlabeled pool).",
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import items and seed labels from a file: every record, or none at all."""
    with handle_errors():
        from labelwise.service.io import count_records, import_file
        from labelwise.service.store.engine import transaction
        from labelwise.service.store.projects import get_project

        engine, factory = open_store(db)
        try:
            with transaction(factory) as session:
                project = get_project(session=session, name=name)
                total = 2 * count_records(file, format.value) if file.is_file() else 0
                report = run_with_progress(
                    f"Importing {file.name} (check, then write)",
                    total,
                    lambda tick: import_file(
                        session=session,
                        project=project,
                        path=file,
                        role=role.value,
                        format=format.value,
                        id_field=id_field,
                        split=split,
                        ignore_labels=ignore_labels,
                        progress=tick,
                    ),
                )
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    message = (
        f"Imported {report.items:,} {report.role} items ({report.labels:,} with a "
        f"label) into project {report.project!r} from {report.path} "
        f"({report.format})."
    )
    if report.skipped_by_split:
        message += f" Skipped {report.skipped_by_split:,} records of other splits."
    if report.skipped_duplicates:
        message += (
            f" Skipped {report.skipped_duplicates:,} records whose content was "
            "already imported with the same label."
        )
    typer.echo(message)


_SUFFIX_FORMATS = {
    ".jsonl": ExportFormat.jsonl,
    ".csv": ExportFormat.csv,
    ".parquet": ExportFormat.parquet,
    ".json": ExportFormat.label_studio,
}


def export_command(
    name: NameArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="File to write (replaced when complete).", show_default=False
        ),
    ],
    format: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            help="File format (default: by --out suffix: .jsonl, .csv, .parquet, "
            ".json = Label Studio).",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        Role | None, typer.Option(help="Export only items of this role (default: all).")
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            "--release",
            help="Export a release's frozen labels (e.g. r2) instead of the current "
            "items.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export items with their final labels and provenance to a file."""
    with handle_errors():
        from labelwise.exceptions import InvalidInputError
        from labelwise.service.io import export_project
        from labelwise.service.store.calibration import write_quality_sidecar
        from labelwise.service.store.engine import read_only
        from labelwise.service.store.items import count_items
        from labelwise.service.store.projects import get_project

        chosen = format or _SUFFIX_FORMATS.get(out.suffix.lower())
        if chosen is None:
            raise InvalidInputError(
                f"Cannot tell the export format from {str(out)!r}; expected a "
                ".jsonl, .csv, .parquet or .json suffix.",
                hint="Pass --format jsonl|csv|parquet|label-studio|prodigy.",
            )
        role_name = role.value if role else None
        engine, factory = open_store(db)
        try:
            with read_only(factory) as session:
                project = get_project(session=session, name=name)
                if release is not None:
                    count = _export_release(
                        session, project, release, out, chosen.value, role_name
                    )
                else:
                    total = count_items(
                        session=session, project=project, role=role_name
                    )
                    count = run_with_progress(
                        f"Exporting {name}",
                        total,
                        lambda tick: export_project(
                            session=session,
                            project=project,
                            path=out,
                            format=chosen.value,
                            role=role_name,
                            progress=tick,
                        ),
                    )
                # Guideline versions and calibration sessions (#6), beside the file.
                write_quality_sidecar(session=session, project=project, out=out)
        finally:
            engine.dispose()
    if as_json:
        payload = {
            "project": name,
            "path": str(out),
            "format": chosen.value,
            "role": role_name,
            "release": release,
            "items": count,
        }
        typer.echo(json.dumps(payload))
        return
    what = f"labels of release {release}" if release else "items"
    typer.echo(
        f"Exported {count:,} {what} of project {name!r} to {out} ({chosen.value})."
    )


def _export_release(
    session: Session,
    project: Project,
    release_id: str,
    out: Path,
    fmt: str,
    role: str | None,
) -> int:
    """Write a release's frozen labels to ``out`` (every export format works)."""
    from labelwise.service.io.exporter import write_export
    from labelwise.service.loop.releases import get_release, iter_release_rows

    row = get_release(session=session, project=project, release_id=release_id)
    total = sum(1 for e in row.labels if role is None or e["role"] == role)
    pages = iter_release_rows(session=session, project=project, release=row, role=role)
    return run_with_progress(
        f"Exporting release {release_id} of {project.name}",
        total,
        lambda tick: write_export(
            pages, project=project, path=out, format=fmt, progress=tick
        ),
    )
