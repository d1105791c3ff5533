"""``labelwise round``: train on the final labels and pick the next batch to label."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors

if TYPE_CHECKING:
    from labelwise.service.loop import RoundSummary

__all__ = ["round_command"]


def _describe(name: str, summary: RoundSummary) -> list[str]:
    """A few readable lines about ``summary``."""
    lines = [
        f"Round {summary.round_number} of project {name!r}: "
        f"{summary.selected} items selected."
    ]
    if summary.mode == "cold_start":
        from labelwise.service.loop import DEFAULT_MIN_LABELS

        lines.append(
            f"  model    none (cold start: fewer than {DEFAULT_MIN_LABELS} final "
            "labels of 2+ classes); strategies that need a model hand their "
            "slots on, to geometry or to random"
        )
    else:
        metrics = summary.metrics
        if metrics:
            scores = (
                f"accuracy {metrics['accuracy']:.3f}, macro F1 "
                f"{metrics['macro_f1']:.3f} on {metrics['n_validation']} "
                "validation items"
            )
        else:
            scores = "no labeled validation items to score it on"
        lines.append(f"  model    {summary.model_version} ({scores})")
    lines.append(f"  policy   {summary.policy} (version {summary.policy_version})")
    reasons = ", ".join(f"{k} {v}" for k, v in summary.counts_by_reason.items())
    lines.append(f"  reasons  {reasons}")
    return lines


def round_command(
    name: Annotated[str, typer.Argument(help="Project name.", show_default=False)],
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Items to select.")
    ] = 50,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="Policy name (see `labelwise policies`) or a JSON/TOML policy file.",
        ),
    ] = "default",
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the model and the batch; same seed and data, same batch. "
            "Default: a fresh seed, recorded with the round.",
            show_default=False,
        ),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size",
            help="Pool rows scored at a time (bounds memory; never changes the "
            "batch). Default: the whole pool in memory, 100,000 rows for an "
            "external pool.",
            show_default=False,
        ),
    ] = None,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            "--dask-scheduler",
            envvar="LABELWISE_DASK_SCHEDULER",
            help="Dask scheduler address: score an external pool's Parquet row "
            "groups as Dask tasks (needs labelwise[scale]).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the round summary as one JSON object."),
    ] = False,
) -> None:
    """Train on the final labels, score the unlabeled pool and record the next batch.

    With fewer than 10 final labels of 2+ classes the round starts cold: no
    model, so strategies that need one hand their share on to geometry or to
    random; the default policy's batch is then all random (docs/rounds.md).
    The pool's scores are cached per model version in the data folder
    (LABELWISE_DATA_DIR, default labelwise-data beside the SQLite file).
    """
    with handle_errors():
        from labelwise.service.loop import run_round
        from labelwise.service.settings import load_settings
        from labelwise.service.store.engine import transaction
        from labelwise.service.store.projects import get_project

        data_dir = load_settings(database_url=db).resolved_data_dir()
        engine, factory = open_store(db)
        try:
            with transaction(factory) as session:
                project = get_project(session=session, name=name)
                summary = run_round(
                    session=session,
                    project=project,
                    batch_size=batch_size,
                    policy=policy,
                    seed=seed,
                    chunk_size=chunk_size,
                    dask_scheduler=dask_scheduler,
                    data_dir=data_dir,
                )
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    for line in _describe(name, summary):
        typer.echo(line)
