"""``labelwise agreement``: agreement figures (and final labels) of a label file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from labelwise.cli._db import DbOption
from labelwise.cli._errors import handle_errors
from labelwise.exceptions import ConfigError, InvalidInputError, NotFoundError

__all__ = ["agreement"]

_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_METHODS = ("dawid-skene", "majority")


def _format(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"Cannot tell the format of {path}: expected a suffix among "
            f"{', '.join(sorted(_FORMATS))}. Got {path.suffix!r} instead.",
            hint="Rename the file with its format's suffix.",
        )
    return fmt


def _read(path: Path) -> Any:
    from labelwise.data import read_table

    if not path.exists():
        raise NotFoundError(
            f"Label file {path} does not exist.",
            hint="Pass a .parquet, .csv or .jsonl file of raw labels.",
        )
    return read_table(path, _format(path))


def _is_list_column(column: Any) -> bool:
    values = column.dropna()
    if values.empty:
        return False
    first = values.iloc[0]
    return hasattr(first, "__len__") and not isinstance(first, str | bytes)


def _write(frame: Any, path: Path) -> None:
    fmt = _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)


def _print_table(figures: dict[str, Any], source: Path) -> None:
    table = Table(title=f"Agreement: {source.name}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if value is None:
            text = "n/a"
        elif isinstance(value, float):
            text = f"{value:.4f}"
        else:
            text = f"{value:,}"
        table.add_row(key, text)
    Console(highlight=False).print(table)


def _print_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print_breakdowns(result: dict[str, Any]) -> None:
    from labelwise.service.quality import BREAKDOWNS, FIGURES

    console = Console(highlight=False)
    for key, column in BREAKDOWNS.items():
        rows = result[key]
        table = Table(title=f"{key.replace('_', ' ')}")
        table.add_column(column)
        for figure in FIGURES:
            table.add_column(figure.replace("_", " "), justify="right")
        for row in rows:
            table.add_row(str(row[column]), *(_print_value(row[f]) for f in FIGURES))
        if rows:
            console.print(table)
        else:
            console.print(f"{key.replace('_', ' ')}: no answers yet.")


def _project_agreement(project: str, db: str | None, as_json: bool) -> None:
    from labelwise.cli._db import open_store
    from labelwise.service.quality import FIGURES, project_agreement
    from labelwise.service.store import get_project, read_only

    engine, factory = open_store(db)
    try:
        with read_only(factory) as session:
            found = get_project(session=session, name=project)
            result = project_agreement(session=session, project=found)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_table({key: result[key] for key in FIGURES}, Path(f"project {project}"))
    _print_breakdowns(result)


def agreement(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Raw labels: a .parquet, .csv or .jsonl file (or use --project).",
            show_default=False,
        ),
    ] = None,
    item_column: Annotated[str, typer.Option(help="Item id column.")] = "item",
    annotator_column: Annotated[
        str,
        typer.Option(help="Annotator column (a list column is exploded, aligned)."),
    ] = "annotator",
    label_column: Annotated[
        str, typer.Option(help="Label column (a list column is exploded, aligned).")
    ] = "label",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON.")
    ] = False,
    aggregate: Annotated[
        str | None,
        typer.Option(help="Also write final labels: majority or dawid-skene."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="File for the final labels (.parquet, .csv or .jsonl)."),
    ] = None,
    tie: Annotated[
        str, typer.Option(help="Majority tie rule: random, first or abstain.")
    ] = "random",
    seed: Annotated[int, typer.Option(help="Seed for random tie-breaking.")] = 0,
    project: Annotated[
        str | None,
        typer.Option(
            help="Read a project's stored queue answers instead of FILE; adds "
            "breakdowns per reason, label, week and guideline version.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Percent agreement, Fleiss' κ, Krippendorff's α and Cohen's κ of raw labels."""
    with handle_errors():
        if (file is None) == (project is None):
            raise ConfigError(
                "labelwise agreement reads either a label FILE or a project's "
                f"stored answers (--project NAME). Got "
                f"{'both' if file is not None else 'neither'}.",
                hint="Pass a file, e.g. `labelwise agreement labels.csv`, or "
                "`labelwise agreement --project NAME`.",
            )
        if project is not None:
            if aggregate is not None or out is not None:
                raise ConfigError(
                    "--aggregate/--out work on a label FILE; a project's final "
                    "labels follow its own aggregation setting.",
                    hint="Use `labelwise project quality NAME --aggregation ...`.",
                )
            _project_agreement(project, db, as_json)
            return
        assert file is not None
        from labelwise.quality import (
            agreement_report,
            dawid_skene,
            explode_annotations,
            majority_vote,
        )
        from labelwise.quality._agreement import check_columns

        if aggregate is not None and aggregate not in _METHODS:
            raise ConfigError(
                f"--aggregate must be one of {', '.join(_METHODS)}. "
                f"Got {aggregate!r} instead."
            )
        if (aggregate is None) != (out is None):
            raise ConfigError(
                "--aggregate and --out go together: one names the method, the "
                "other the file for the final labels.",
                hint="Pass both, e.g. --aggregate majority --out final.csv.",
            )
        frame = _read(file)
        columns = {
            "--item-column": item_column,
            "--annotator-column": annotator_column,
            "--label-column": label_column,
        }
        check_columns(frame, columns, owner=f"labelwise agreement ({file.name})")
        names = {"item": item_column, "annotator": annotator_column}
        names["label"] = label_column
        if _is_list_column(frame[annotator_column]):
            frame = explode_annotations(
                frame,
                annotators=annotator_column,
                annotations=label_column,
                item=item_column,
            )
            names = {"item": "item", "annotator": "annotator", "label": "label"}
        figures = agreement_report(frame, **names).to_dict()
        if as_json:
            typer.echo(json.dumps(figures, indent=2))
        else:
            _print_table(figures, file)
        if aggregate is not None and out is not None:
            if aggregate == "majority":
                final = majority_vote(frame, **names, tie=tie, rng=seed)
            else:
                final = dawid_skene(
                    frame,
                    item=names["item"],
                    annotator=names["annotator"],
                    label=names["label"],
                ).labels
            _write(final[["item", "label", "confidence", "method"]], out)
            if not as_json:
                Console(highlight=False).print(
                    f"Wrote {len(final):,} final labels ({aggregate}) to {out}."
                )
