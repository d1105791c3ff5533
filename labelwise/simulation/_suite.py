"""The efficiency benchmark: datasets × policies × seeds, a markdown table and plots."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from labelwise._typing import FloatArray
from labelwise.data import load_dataset
from labelwise.exceptions import ConfigError, NotFoundError
from labelwise.simulation._benchmark import (
    Comparison,
    PolicyResult,
    compare_policies,
    plot_comparison,
)
from labelwise.simulation._loop import History, SimulationConfig

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BatchChoice",
    "EfficiencyCase",
    "default_cases",
    "expand_cases",
    "parse_batches",
    "run_efficiency",
    "write_report",
]

#: A batch size by name (the case's ``main`` or larger ``alt`` size) or in labels.
BatchChoice = Literal["main", "alt"] | int

_NAMED_BATCHES: dict[str, BatchChoice] = {"main": "main", "alt": "alt"}


@dataclass(frozen=True)
class EfficiencyCase:
    """One benchmark dataset with the budget and batch sizes that matter for it."""

    name: str
    source: str
    config: SimulationConfig
    text_column: str | None = None
    alt_batch: int | None = None

    def with_noise(self, noise: float) -> EfficiencyCase:
        """The same case with a noisy oracle (the name says the noise)."""
        if noise == 0:
            return self
        return replace(
            self,
            name=f"{self.name}+noise{round(noise * 100)}",
            config=replace(self.config, noise=noise),
        )

    def batch_size(self, choice: BatchChoice) -> int:
        """The batch size ``choice`` names for this case.

        ``"main"`` is the config's batch size, ``"alt"`` the larger
        ``alt_batch``, an int itself. The size must be smaller than the budget
        minus the initial set, so that the curve has more than one round.
        """
        if choice == "main":
            size = self.config.batch_size
        elif choice == "alt":
            if self.alt_batch is None:
                raise ConfigError(
                    f"Case {self.name!r} has no alt batch size.",
                    hint="Pass sizes instead, e.g. --batches 10,50.",
                )
            size = self.alt_batch
        else:
            size = choice
        budget, initial = self.config.budget, self.config.initial
        if size >= budget - initial:
            raise ConfigError(
                f"Batch size {size} is too large for {self.name!r}: it must be "
                f"smaller than the budget minus the initial set ({budget} - "
                f"{initial} = {budget - initial}).",
                hint=f"Pass a batch size below {budget - initial} to --batches, or "
                "main / alt (the sizes chosen for each case).",
            )
        return size

    def with_batch(self, choice: BatchChoice) -> EfficiencyCase:
        """The case with the batch size ``choice`` names; its name ends @b<size>."""
        size = self.batch_size(choice)
        return replace(
            self,
            name=f"{self.name}@b{size}",
            config=replace(self.config, batch_size=size),
        )


def _cfg(budget: int, batch: int, initial: int = 20) -> SimulationConfig:
    return SimulationConfig(budget=budget, batch_size=batch, initial=initial)


#: name -> (file in the datasets folder or sklearn:NAME, config, alt batch size).
#: The budgets, batch sizes and initial sets of bench/efficiency10.py's CASES.
_CASES: dict[str, tuple[str, SimulationConfig, int]] = {
    "sms_spam": ("sms_spam.parquet", _cfg(300, 20), 50),
    "subjectivity": ("subjectivity.parquet", _cfg(500, 25), 50),
    "rotten_tomatoes": ("rotten_tomatoes.parquet", _cfg(600, 30), 60),
    "sst2": ("sst2.parquet", _cfg(600, 30), 60),
    "trec": ("trec.parquet", _cfg(300, 30), 50),
    "ag_news": ("ag_news.parquet", _cfg(500, 25), 50),
    "banking77": ("banking77.parquet", _cfg(1500, 100, 100), 150),
    # The multi-annotator text sets, on their majority label (issue #10).
    "hs_brexit": ("hs_brexit_multiannotator.parquet", _cfg(300, 20), 50),
    "md_agreement": ("md_agreement_multiannotator.parquet", _cfg(500, 25), 50),
    "adult": ("adult.parquet", _cfg(400, 20), 50),
    "magic_gamma": ("magic_gamma.parquet", _cfg(400, 20), 50),
    "letter": ("letter.parquet", _cfg(1000, 50, 50), 100),
    "mnist_test10k": ("mnist_test10k.npz", _cfg(500, 25), 50),
    "digits": ("sklearn:digits", _cfg(300, 20), 50),
    "breast_cancer": ("sklearn:breast_cancer", _cfg(150, 10, 10), 25),
    "wine": ("sklearn:wine", _cfg(80, 5, 10), 10),
    "iris": ("sklearn:iris", _cfg(60, 5, 6), 10),
}

#: Other names accepted for a case (bench/efficiency10.py calls MNIST "mnist").
_ALIASES = {"mnist": "mnist_test10k"}


def default_cases(
    datasets_dir: str | Path, names: Sequence[str] | None = None
) -> list[EfficiencyCase]:
    """The benchmark cases, files resolved in ``datasets_dir`` (shared/datasets)."""
    folder = Path(datasets_dir)
    chosen = list(names) if names else list(_CASES)
    cases = []
    for name in (_ALIASES.get(n, n) for n in chosen):
        if name not in _CASES:
            raise NotFoundError(
                f"{name!r} is not an efficiency case; valid names: "
                f"{', '.join(_CASES)}.",
            )
        source, config, alt = _CASES[name]
        path = source if source.startswith("sklearn:") else str(folder / source)
        if not source.startswith("sklearn:") and not Path(path).exists():
            raise NotFoundError(
                f"Dataset file {path} does not exist.",
                hint="Pass --datasets-dir pointing at shared/datasets.",
            )
        cases.append(
            EfficiencyCase(name=name, source=path, config=config, alt_batch=alt)
        )
    return cases


def parse_batches(text: str) -> list[BatchChoice]:
    """``--batches``: ``main``, ``alt`` or sizes, comma-separated, without repeats.

    Parameters
    ----------
    text : str
        For example ``"main,alt"`` or ``"10,50"``.
    """
    choices: list[BatchChoice] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        choice = _NAMED_BATCHES.get(part)
        if choice is None and re.fullmatch(r"[0-9]+", part) and int(part) > 0:
            choice = int(part)
        if choice is None:
            raise ConfigError(
                "The 'batches' parameter of bench efficiency must be main, alt or "
                f"a positive integer. Got {part!r} instead.",
                hint="Pass e.g. --batches main,alt or --batches 10,50.",
            )
        if choice not in choices:
            choices.append(choice)
    if not choices:
        raise ConfigError(
            "The 'batches' parameter of bench efficiency must name at least one "
            f"batch size. Got {text!r} instead.",
            hint="Pass e.g. --batches main,alt or --batches 10,50.",
        )
    return choices


def expand_cases(
    cases: Sequence[EfficiencyCase],
    noise: Sequence[float],
    batches: Sequence[BatchChoice] | None = None,
) -> list[EfficiencyCase]:
    """Every case × noise rate × batch size, one comparison each, in that order.

    Parameters
    ----------
    cases : sequence of EfficiencyCase
        The base cases (:func:`default_cases`).
    noise : sequence of float
        Oracle noise rates; 0 keeps the case's name.
    batches : sequence of BatchChoice, optional
        Batch sizes (:func:`parse_batches`). Without them every case runs its
        main batch size under its own name; with them every name ends with
        ``@b<size>`` (``trec+noise10@b50``), and choices that name the same
        size for a case run once. Every size is checked before anything runs.
    """
    expanded = []
    for case in cases:
        sizes = None if batches is None else _unique_sizes(case, batches)
        for rate in noise:
            noisy = case.with_noise(rate)
            if sizes is None:
                expanded.append(noisy)
            else:
                expanded.extend(noisy.with_batch(size) for size in sizes)
    return expanded


def _unique_sizes(case: EfficiencyCase, batches: Sequence[BatchChoice]) -> list[int]:
    return list(dict.fromkeys(case.batch_size(choice) for choice in batches))


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


def _aulc_cell(result: PolicyResult) -> str:
    aulcs = result.aulcs()
    return f"{aulcs.mean():.4f} ± {aulcs.std():.4f}"


def _reached_cell(result: PolicyResult) -> str:
    to_target = result.labels_to_target_mean()
    return "not reached" if to_target is None else f"{to_target:,.0f}"


def _budget_cell(comp: Comparison) -> str:
    return f"{comp.config.budget} / {comp.config.batch_size}"


def _policy_rows(comparisons: Sequence[Comparison]) -> list[str]:
    lines = [
        "| dataset | budget / batch | policy | AULC ± std | labels to 95 % | "
        "Δ AULC vs random | p (paired t) |",
        "|---|---|---|---|---|---|---|",
    ]
    for comp in comparisons:
        for name, result in comp.results.items():
            gain = comp.gain(name) if name != "random" else None
            delta = f"{gain['aulc_delta'] * 100:+.2f} pt" if gain else "—"
            lines.append(
                f"| {comp.dataset} | {_budget_cell(comp)} | {name} | "
                f"{_aulc_cell(result)} | {_reached_cell(result)} | {delta} | "
                f"{_fmt_p(gain['p_value'] if gain else None)} |"
            )
    return lines


def _versus_cell(versus: dict[str, Any] | None) -> str:
    if versus is None:
        return "—"
    return f"{versus['aulc_delta'] * 100:+.2f} pt (p {_fmt_p(versus['p_value'])})"


def _versus_rows(comparisons: Sequence[Comparison]) -> list[str]:
    lines = [
        "Primary vs random and vs the best other (highest mean AULC among the "
        "other policies, random included): Δ AULC in points, p from the "
        "two-sided Wilcoxon signed-rank test over the seeds' paired AULCs.",
        "",
        "| dataset | budget / batch | primary | AULC ± std | labels to 95 % | "
        "Δ vs random (p) | best other | Δ vs best (p) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for comp in comparisons:
        result = comp.results[comp.primary]
        best = comp.best_other()
        versus_best = None if best is None else comp.versus(best)
        lines.append(
            f"| {comp.dataset} | {_budget_cell(comp)} | {comp.primary} | "
            f"{_aulc_cell(result)} | {_reached_cell(result)} | "
            f"{_versus_cell(comp.versus('random'))} | {best or '—'} | "
            f"{_versus_cell(versus_best)} |"
        )
    return lines


def _markdown(comparisons: Sequence[Comparison]) -> str:
    lines = [*_policy_rows(comparisons), "", *_versus_rows(comparisons)]
    return "\n".join(lines) + "\n"


def _label_bar(ax: Axes, x: float, diff: FloatArray, text: str) -> None:
    """Write ``text`` past the end of the error bar of ``diff``'s mean."""
    mean, std = float(diff.mean()), float(diff.std())
    up = mean >= 0
    ax.annotate(
        text,
        (x, mean + std if up else mean - std),
        textcoords="offset points",
        xytext=(0, 3 if up else -3),
        ha="center",
        va="bottom" if up else "top",
        fontsize=7,
    )


def _gain_panel(ax: Axes, comparisons: Sequence[Comparison], x: FloatArray) -> None:
    names = [n for n in comparisons[0].results if n != "random"]
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        diffs = [
            (comp.results[name].aulcs() - comp.results["random"].aulcs()) * 100
            for comp in comparisons
        ]
        means = [float(d.mean()) for d in diffs]
        errors = [float(d.std()) for d in diffs]
        ax.bar(x + i * width, means, width, yerr=errors, label=name, capsize=2)
        for j, (comp, diff) in enumerate(zip(comparisons, diffs, strict=True)):
            if name == comp.primary:
                p_value = comp.versus("random")["p_value"]
                _label_bar(ax, x[j] + i * width, diff, f"p {_fmt_p(p_value)}")
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_ylabel("AULC − random (points)")
    ax.set_title(
        "Gain over random sampling (mean ± std over seeds; "
        f"p: {comparisons[0].primary} vs random, Wilcoxon signed-rank)"
    )
    ax.legend(fontsize=8)


def _best_other_panel(
    ax: Axes, comparisons: Sequence[Comparison], x: FloatArray
) -> None:
    primary = comparisons[0].primary
    for i, comp in enumerate(comparisons):
        best = comp.best_other()
        if best is None:
            continue
        diff = (comp.results[comp.primary].aulcs() - comp.results[best].aulcs()) * 100
        ax.bar(x[i], diff.mean(), 0.6, yerr=diff.std(), capsize=2, color="C0")
        p_value = comp.versus(best)["p_value"]
        _label_bar(ax, x[i], diff, f"{best}\np {_fmt_p(p_value)}")
    ax.set_xticks(x)
    ax.set_ylabel(f"AULC {primary} − best other (pt)")
    ax.set_title(f"{primary} against the best other policy (Wilcoxon signed-rank p)")


def _summary_plot(comparisons: Sequence[Comparison], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(comparisons), dtype=np.float64)
    fig, axes = plt.subplots(
        2, 1, figsize=(max(6.0, 0.9 * len(comparisons) + 2), 8), dpi=120
    )
    _gain_panel(axes[0], comparisons, x)
    _best_other_panel(axes[1], comparisons, x)
    for ax in axes:
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticklabels([c.dataset for c in comparisons], rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.2)  # room for the p-value labels
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
