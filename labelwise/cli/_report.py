"""``labelwise report``: the ROI and monitoring report as one HTML file or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors, stderr

__all__ = ["report_command"]


def _build(name: str, db: str | None, repeats: int, seed: int) -> dict[str, Any]:
    """Build the report under a progress bar of the model fits."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from labelwise.service.report import build_report
    from labelwise.service.store.engine import read_only
    from labelwise.service.store.projects import get_project

    engine, factory = open_store(db)
    try:
        with (
            Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=stderr,
                transient=False,
            ) as bar,
            read_only(factory) as session,
        ):
            task = bar.add_task("Training the report's models", total=None)
            project = get_project(session=session, name=name)
            return build_report(
                session=session,
                project=project,
                repeats=repeats,
                seed=seed,
                progress=lambda done, total: bar.update(
                    task, completed=done, total=total
                ),
            )
    finally:
        engine.dispose()


def report_command(
    name: Annotated[str, typer.Argument(help="Project name.", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the self-contained HTML report here (plots inline).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print every figure as one JSON object."),
    ] = False,
    repeats: Annotated[
        int,
        typer.Option(
            "--repeats",
            min=1,
            max=50,
            help="Draws per label count on the control-slice learning curves.",
        ),
    ] = 5,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, help="Seed of every draw; same store, same report."
        ),
    ] = 0,
    db: DbOption = None,
) -> None:
    """Labels per week, time per item, gold error, learning curves, drift, stop.

    The control slice compares a model trained on random control labels with
    one trained on as many of the loop's labels and says whether the loop is
    beating random so far (docs/report.md).
    """
    if out is None and not as_json:
        raise typer.BadParameter(
            "Expected --out FILE, --json or both. Got neither.",
            param_hint="--out / --json",
        )
    with handle_errors():
        report = _build(name, db, repeats, seed)
        if out is not None:
            from labelwise.service.report import render_html

            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(out.name + ".partial")
            partial.write_text(render_html(report), encoding="utf-8")
            partial.replace(out)
    if as_json:
        typer.echo(json.dumps(report))
    if out is not None:
        stderr.print(
            f"Wrote {out}: {report['control_slice']['verdict_text']} "
            f"Stop recommendation: {report['stop']['recommendation']}."
        )
