"""Agreement figures and majority vote vs Dawid–Skene on public crowd data.

Runs :func:`labelwise.quality.agreement_report` on MD-Agreement and HS-Brexit,
and compares majority vote with Dawid–Skene against the expert ``gold_label``
on the four crowdsourcing sets of ``crowd_truth_inference_multiannotator``.
Prints two markdown tables.

    python bench/agreement.py [--datasets ../shared/datasets] [--seeds 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from labelwise.quality import (
    agreement_report,
    dawid_skene,
    explode_annotations,
    majority_vote,
)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def agreement_table(folder: Path) -> list[str]:
    lines = [
        "| dataset | items | annotators | labels | % agreement | Fleiss κ "
        "| Krippendorff α | mean pairwise Cohen κ | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("md_agreement", "hs_brexit"):
        frame = pd.read_parquet(folder / f"{name}_multiannotator.parquet")
        start = time.perf_counter()
        report = agreement_report(explode_annotations(frame))
        seconds = time.perf_counter() - start
        lines.append(
            f"| {name} | {report.n_items:,} | {report.n_annotators:,} "
            f"| {report.n_labels:,} | {_fmt(report.percent_agreement)} "
            f"| {_fmt(report.fleiss_kappa)} | {_fmt(report.krippendorff_alpha)} "
            f"| {_fmt(report.mean_pairwise_cohen_kappa)} | {seconds:.2f} |"
        )
    return lines


def aggregation_table(folder: Path, seeds: int) -> list[str]:
    crowd = pd.read_parquet(folder / "crowd_truth_inference_multiannotator.parquet")
    lines = [
        "| dataset | items | workers | labels | classes | majority (random ties, "
        f"mean of {seeds} seeds) | majority (abstain = wrong) | Dawid–Skene "
        "| DS iterations | DS seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, votes in crowd.groupby("dataset", sort=True):
        gold = votes.groupby("item_id")["gold_label"].first()
        columns = {"item": "item_id", "annotator": "worker_id", "label": "label"}

        def accuracy(result: pd.DataFrame, gold: pd.Series = gold) -> float:
            labels = result.set_index("item")["label"]
            return float((labels == gold.loc[labels.index]).mean())

        random_ties = np.mean(
            [
                accuracy(majority_vote(votes, **columns, tie="random", rng=seed))
                for seed in range(seeds)
            ]
        )
        abstain = accuracy(majority_vote(votes, **columns, tie="abstain"))
        start = time.perf_counter()
        ds = dawid_skene(
            votes, item="item_id", annotator="worker_id", label="label", max_iter=500
        )
        seconds = time.perf_counter() - start
        lines.append(
            f"| {name} | {len(gold):,} | {votes['worker_id'].nunique():,} "
            f"| {len(votes):,} | {votes['label'].nunique()} | {random_ties:.4f} "
            f"| {abstain:.4f} | {accuracy(ds.labels):.4f} | {ds.n_iter}"
            f"{'' if ds.converged else ' (not converged)'} | {seconds:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    print("\n".join(agreement_table(args.datasets)))
    print()
    print("\n".join(aggregation_table(args.datasets, args.seeds)))


if __name__ == "__main__":
    main()
