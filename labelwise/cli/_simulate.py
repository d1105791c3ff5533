"""``labelwise simulate``: replay the loop on labeled data and compare with random."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from labelwise.cli._errors import handle_errors, stderr
from labelwise.cli._progress import run_with_progress

__all__ = ["simulate"]


def _policy_list(primary: str, compare: str | None) -> list[str]:
    names = [primary]
    for name in (compare or "").split(","):
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return names


def simulate(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Labeled data: a .parquet, .csv, .jsonl or .npz file, "
            "or sklearn:digits.",
        ),
    ],
    text_column: Annotated[
        str | None,
        typer.Option(help="Text column (default: 'text' when present, else tabular)."),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="Policy name (see `labelwise policies`) or a JSON/TOML policy file."
        ),
    ] = "default",
    compare: Annotated[
        str | None,
        typer.Option(help="More policies to run beside it, comma-separated."),
    ] = None,
    budget: Annotated[
        int, typer.Option(help="Total labels, initial set included.")
    ] = 300,
    batch_size: Annotated[int, typer.Option(help="Labels per round.")] = 20,
    initial: Annotated[
        int, typer.Option(help="Random labels before the first model.")
    ] = 20,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0..K-1).")] = 5,
    noise: Annotated[
        float, typer.Option(help="Probability that the oracle answers wrongly.")
    ] = 0.0,
    metric: Annotated[str, typer.Option(help="accuracy or macro_f1.")] = "accuracy",
    model: Annotated[
        str | None, typer.Option(help="Default model name (labelwise.models).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel processes; -1 = all cores.")] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (docs/simulate.md).")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write the learning curves to this PNG.")
    ] = None,
) -> None:
    """Replay active learning on labeled data; random always runs as the baseline."""
    with handle_errors():
        from labelwise.data import load_dataset
        from labelwise.simulation import (
            SimulationConfig,
            compare_policies,
            plot_comparison,
        )

        dataset = load_dataset(data, text_column=text_column)
        config = SimulationConfig(
            budget=budget,
            batch_size=batch_size,
            initial=initial,
            noise=noise,
            metric=metric,
            model=model,
        )
        names = _policy_list(policy, compare)
        seed_list = list(range(seeds))
        n_runs = len(names + ([] if "random" in names else ["random"])) * len(seed_list)
        stderr.print(dataset.describe())
        comparison = run_with_progress(
            f"simulating {dataset.name}",
            n_runs,
            lambda tick: compare_policies(
                dataset,
                names,
                config=config,
                seeds=seed_list,
                n_jobs=jobs,
                progress=lambda _history: tick(),
            ),
        )
        if plot is not None:
            plot_comparison(comparison, plot)
        result = comparison.to_dict()
        if as_json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        else:
            _print_summary(result)
        if plot is not None:
            stderr.print(f"learning curves written to {plot}")


def _fmt_labels(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def _print_summary(result: dict[str, object]) -> None:
    console = Console()
    table = Table(
        title=(
            f"{result['dataset']}: {result['metric']}, full-data "
            f"{result['full_data_score']:.3f}, target 95 % = "
            f"{result['target_score']:.3f}"
        )
    )
    table.add_column("policy")
    table.add_column("AULC", justify="right")
    table.add_column("final", justify="right")
    table.add_column("labels to 95 %", justify="right")
    table.add_column("Δ AULC vs random", justify="right")
    table.add_column("p", justify="right")
    results: dict[str, dict[str, object]] = result["results"]  # type: ignore[assignment]
    gains: dict[str, dict[str, object]] = result["gain_vs_random_by_policy"]  # type: ignore[assignment]
    for name, row in results.items():
        gain = gains.get(name)
        p_value = gain["p_value"] if gain else None
        table.add_row(
            name,
            f"{row['aulc_mean']:.4f} ± {row['aulc_std']:.4f}",
            f"{row['final_score_mean']:.4f}",
            _fmt_labels(row["labels_to_target_mean"]),  # type: ignore[arg-type]
            f"{gain['aulc_delta']:+.4f}" if gain else "—",
            "—" if p_value is None else f"{p_value:.3g}",
        )
    console.print(table)
