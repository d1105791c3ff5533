"""``labelwise bench``: benchmarks that produce tables and plots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from labelwise.cli._errors import handle_errors, stderr
from labelwise.cli._progress import run_with_progress

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Benchmarks: label efficiency of policies against random.",
    no_args_is_help=True,
)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@bench_app.command("efficiency")
def efficiency(
    datasets: Annotated[
        str | None,
        typer.Option(help="Comma-separated case names (default: all cases)."),
    ] = None,
    policies: Annotated[
        str, typer.Option(help="Comma-separated policies; random is always added.")
    ] = "default,margin,entropy",
    seeds: Annotated[int, typer.Option(help="Seeds per policy and dataset.")] = 5,
    noise: Annotated[
        str, typer.Option(help="Comma-separated oracle noise rates, e.g. 0,0.1,0.3.")
    ] = "0",
    batches: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated batch sizes per case: main, alt (the case's "
            "larger size) or integers, e.g. main,alt or 10,50. When given, every "
            "comparison's name ends with @b<size> (default: main, names "
            "unchanged)."
        ),
    ] = None,
    datasets_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the benchmark files (default: $LABELWISE_DATASETS "
            "or ../shared/datasets)."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for results.md, results.json and plots.")
    ] = Path("bench/out/efficiency"),
    jobs: Annotated[int, typer.Option(help="Parallel processes; -1 = all cores.")] = -1,
) -> None:
    """Run datasets × noise × batch sizes × policies × seeds; write tables and plots."""
    with handle_errors():
        from labelwise.simulation._suite import (
            default_cases,
            expand_cases,
            parse_batches,
            run_efficiency,
            write_report,
        )

        folder = datasets_dir or Path(
            os.environ.get("LABELWISE_DATASETS", "../shared/datasets")
        )
        base = default_cases(folder, _split(datasets) if datasets else None)
        rates = [float(r) for r in _split(noise)]
        sizes = None if batches is None else parse_batches(batches)
        cases = expand_cases(base, rates, sizes)
        names = _split(policies)
        n_policies = len(names) + (0 if "random" in names else 1)
        total = len(cases) * n_policies * seeds
        comparisons = run_with_progress(
            "efficiency benchmark",
            total,
            lambda tick: run_efficiency(
                cases,
                names,
                seeds=list(range(seeds)),
                n_jobs=jobs,
                progress=lambda _case, _history: tick(),
                out_dir=out,
            ),
        )
        table = write_report(comparisons, out)
        stderr.print(f"table written to {table}; plots in {out}")
        typer.echo(table.read_text())
