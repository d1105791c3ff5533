"""The efficiency benchmark: datasets × policies × seeds, a markdown table and plots."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.data import load_dataset
from labelwise.exceptions import NotFoundError
from labelwise.simulation._benchmark import (
    Comparison,
    compare_policies,
    plot_comparison,
)
from labelwise.simulation._loop import History, SimulationConfig

__all__ = ["EfficiencyCase", "default_cases", "run_efficiency", "write_report"]


@dataclass(frozen=True)
class EfficiencyCase:
    """One benchmark dataset with the budget and batch size that matter for it."""

    name: str
    source: str
    config: SimulationConfig
    text_column: str | None = None

    def with_noise(self, noise: float) -> EfficiencyCase:
        """The same case with a noisy oracle (the name says the noise)."""
        if noise == 0:
            return self
        return replace(
            self,
            name=f"{self.name}+noise{round(noise * 100)}",
            config=replace(self.config, noise=noise),
        )


def _cfg(budget: int, batch: int, initial: int = 20) -> SimulationConfig:
    return SimulationConfig(budget=budget, batch_size=batch, initial=initial)


#: name -> (file in the datasets folder or sklearn:NAME, config)
_CASES: dict[str, tuple[str, SimulationConfig]] = {
    "sms_spam": ("sms_spam.parquet", _cfg(300, 20)),
    "subjectivity": ("subjectivity.parquet", _cfg(500, 25)),
    "rotten_tomatoes": ("rotten_tomatoes.parquet", _cfg(600, 30)),
    "sst2": ("sst2.parquet", _cfg(600, 30)),
    "trec": ("trec.parquet", _cfg(500, 25)),
    "ag_news": ("ag_news.parquet", _cfg(500, 25)),
    "banking77": ("banking77.parquet", _cfg(1500, 75, 100)),
    # The multi-annotator text sets, on their majority label (issue #10).
    "hs_brexit": ("hs_brexit_multiannotator.parquet", _cfg(300, 20)),
    "md_agreement": ("md_agreement_multiannotator.parquet", _cfg(500, 25)),
    "adult": ("adult.parquet", _cfg(400, 20)),
    "magic_gamma": ("magic_gamma.parquet", _cfg(400, 20)),
    "letter": ("letter.parquet", _cfg(1000, 50, 50)),
    "mnist_test10k": ("mnist_test10k.npz", _cfg(500, 25)),
    "digits": ("sklearn:digits", _cfg(300, 10)),
    "breast_cancer": ("sklearn:breast_cancer", _cfg(150, 10, 10)),
    "wine": ("sklearn:wine", _cfg(80, 5, 10)),
    "iris": ("sklearn:iris", _cfg(60, 5, 6)),
}


def default_cases(
    datasets_dir: str | Path, names: Sequence[str] | None = None
) -> list[EfficiencyCase]:
    """The benchmark cases, files resolved in ``datasets_dir`` (shared/datasets)."""
    folder = Path(datasets_dir)
    chosen = list(names) if names else list(_CASES)
    cases = []
    for name in chosen:
        if name not in _CASES:
            raise NotFoundError(
                f"{name!r} is not an efficiency case; valid names: "
                f"{', '.join(_CASES)}.",
            )
        source, config = _CASES[name]
        path = source if source.startswith("sklearn:") else str(folder / source)
        if not source.startswith("sklearn:") and not Path(path).exists():
            raise NotFoundError(
                f"Dataset file {path} does not exist.",
                hint="Pass --datasets-dir pointing at shared/datasets.",
            )
        cases.append(EfficiencyCase(name=name, source=path, config=config))
    return cases


def run_efficiency(
    cases: Sequence[EfficiencyCase],
    policies: Sequence[str],
    *,
    seeds: Sequence[int],
    n_jobs: int = 1,
    progress: Callable[[str, History], None] | None = None,
    out_dir: str | Path | None = None,
) -> list[Comparison]:
    """Run every case with every policy (and random) on the same seeds.

    With ``out_dir`` the report is rewritten after each case, so a long run
    shows its results as they come.
    """
    comparisons = []

    def report(name: str) -> Callable[[History], None] | None:
        if progress is None:
            return None
        return lambda history: progress(name, history)

    for case in cases:
        dataset = load_dataset(case.source, text_column=case.text_column)
        dataset = replace(dataset, name=case.name)
        comparisons.append(
            compare_policies(
                dataset,
                list(policies),
                config=case.config,
                seeds=seeds,
                n_jobs=n_jobs,
                progress=report(case.name),
            )
        )
        if out_dir is not None:
            write_report(comparisons, out_dir)
    return comparisons


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _markdown(comparisons: Sequence[Comparison]) -> str:
    lines = [
        "| dataset | budget / batch | policy | AULC ± std | labels to 95 % | "
        "Δ AULC vs random | p (paired t) |",
        "|---|---|---|---|---|---|---|",
    ]
    for comp in comparisons:
        cfg = comp.config
        for name, result in comp.results.items():
            aulcs = result.aulcs()
            to_target = result.labels_to_target_mean()
            gain = comp.gain(name) if name != "random" else None
            delta = f"{gain['aulc_delta'] * 100:+.2f} pt" if gain else "—"
            reached = "not reached" if to_target is None else f"{to_target:,.0f}"
            lines.append(
                f"| {comp.dataset} | {cfg.budget} / {cfg.batch_size} | {name} | "
                f"{aulcs.mean():.4f} ± {aulcs.std():.4f} | {reached} | {delta} | "
                f"{_fmt_p(gain['p_value'] if gain else None)} |"
            )
    return "\n".join(lines) + "\n"


def _summary_plot(comparisons: Sequence[Comparison], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in comparisons[0].results if n != "random"]
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(comparisons))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(comparisons) + 2), 4), dpi=120)
    for i, name in enumerate(names):
        deltas = []
        errors = []
        for comp in comparisons:
            diff = comp.results[name].aulcs() - comp.results["random"].aulcs()
            deltas.append(diff.mean() * 100)
            errors.append(diff.std() * 100)
        ax.bar(x + i * width, deltas, width, yerr=errors, label=name, capsize=2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_xticklabels([c.dataset for c in comparisons], rotation=30, ha="right")
    ax.set_ylabel("AULC − random (points)")
    ax.set_title("Gain over random sampling (mean ± std over seeds)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(comparisons: Sequence[Comparison], out_dir: str | Path) -> Path:
    """Write ``results.md``, ``results.json``, one PNG per case and ``summary.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for comp in comparisons:
        plot_comparison(comp, out / f"{comp.dataset}.png")
    _summary_plot(comparisons, out / "summary.png")
    payload: list[dict[str, Any]] = [c.to_dict() for c in comparisons]
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = out / "results.md"
    table.write_text(_markdown(comparisons))
    return table
