"""Compare policies with random over seeds: curves, AULC, labels-to-target, p-values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise._typing import FloatArray
from labelwise.data import Dataset
from labelwise.metrics import aulc, labels_to_target, paired_gain, score_predictions
from labelwise.policy import BatchPolicy, load_policy
from labelwise.simulation._loop import (
    History,
    PreparedData,
    SimulationConfig,
    compute_geometry,
    prepare_data,
    run_simulation,
)

__all__ = [
    "Comparison",
    "PolicyResult",
    "compare_policies",
    "full_data_score",
    "plot_comparison",
]

TARGET_SHARE = 0.95


@dataclass(frozen=True)
class PolicyResult:
    """One policy's runs over every seed, summarised."""

    name: str
    version: str
    histories: tuple[History, ...]
    metric: str
    target: float

    @property
    def labels(self) -> FloatArray:
        """Label counts of the curve points (shared by every seed)."""
        return np.asarray(self.histories[0].labels, dtype=np.float64)

    def curves(self) -> FloatArray:
        """Learning curves, shape (n_seeds, n_points)."""
        return np.vstack([h.curve(self.metric) for h in self.histories])

    def aulcs(self) -> FloatArray:
        """AULC per seed, in seed order."""
        return np.asarray([aulc(c) for c in self.curves()], dtype=np.float64)

    def labels_to_target_per_seed(self) -> list[int | None]:
        """Labels each seed needed to reach the target (None: not reached)."""
        return [labels_to_target(self.labels, c, self.target) for c in self.curves()]

    def labels_to_target_mean(self) -> float | None:
        """Labels at which the mean curve first reaches the target; None if never."""
        mean = self.curves().mean(axis=0)
        reached = labels_to_target(self.labels, mean, self.target)
        return None if reached is None else float(reached)

    def to_dict(self) -> dict[str, Any]:
        """The ``results[name]`` object of ``labelwise simulate --json``."""
        curves = self.curves()
        values = self.aulcs()
        mean = curves.mean(axis=0)
        std = curves.std(axis=0)
        select = np.asarray([h.select_seconds for h in self.histories])
        train = np.asarray([h.train_seconds for h in self.histories])
        return {
            "policy_version": self.version,
            "aulc_mean": float(values.mean()),
            "aulc_std": float(values.std()),
            "aulc_per_seed": [float(v) for v in values],
            "labels_to_target_mean": self.labels_to_target_mean(),
            "labels_to_target_per_seed": self.labels_to_target_per_seed(),
            "final_score_mean": float(mean[-1]),
            "curve": [
                [int(x), float(m), float(s)]
                for x, m, s in zip(self.labels, mean, std, strict=True)
            ],
            "round_seconds_mean": {
                "train": float(train.mean()),
                "select": float(select[:, :-1].mean()) if select.shape[1] > 1 else 0.0,
            },
            "label_errors_mean": float(
                np.mean([h.label_errors for h in self.histories])
            ),
        }


@dataclass(frozen=True)
class Comparison:
    """Every policy on the same dataset, seeds, splits and initial sets."""

    dataset: str
    config: SimulationConfig
    seeds: tuple[int, ...]
    full_data_score: float
    results: dict[str, PolicyResult]
    primary: str

    @property
    def metric(self) -> str:
        """The metric of the curves."""
        return self.config.metric

    @property
    def target(self) -> float:
        """95 % of the full-data score."""
        return TARGET_SHARE * self.full_data_score

    def gain(self, name: str, baseline: str = "random") -> dict[str, Any]:
        """AULC gain of ``name`` over ``baseline``: paired t-test across seeds."""
        return paired_gain(
            self.results[name].aulcs(), self.results[baseline].aulcs()
        ).to_dict()

    def best_other(self) -> str | None:
        """The policy other than the primary with the highest mean AULC.

        Random counts; ties go to the first in ``results`` order. None when the
        primary is the only policy (``--policies random``).
        """
        others = [name for name in self.results if name != self.primary]
        if not others:
            return None
        return max(others, key=lambda name: float(self.results[name].aulcs().mean()))

    def versus(self, baseline: str) -> dict[str, Any]:
        """The primary against ``baseline``: Wilcoxon signed-rank across seeds.

        Returns ``{"policy", "aulc_delta", "p_value", "n"}``: the baseline's
        name, the mean AULC difference (primary − baseline), the two-sided
        p-value (None with one seed) and the number of paired seeds.
        """
        gain = paired_gain(
            self.results[self.primary].aulcs(),
            self.results[baseline].aulcs(),
            method="wilcoxon",
        )
        return {
            "policy": baseline,
            "aulc_delta": gain.delta,
            "p_value": gain.p_value,
            "n": gain.n_pairs,
        }

    def to_dict(self) -> dict[str, Any]:
        """The object ``labelwise simulate --json`` prints (docs/simulate.md)."""
        primary = self.results[self.primary]
        best = self.best_other()
        return {
            "dataset": self.dataset,
            "policy": self.primary,
            "policy_version": primary.version,
            "seeds": list(self.seeds),
            "metric": self.metric,
            "full_data_score": self.full_data_score,
            "target_score": self.target,
            "config": self.config.to_dict(),
            "results": {name: r.to_dict() for name, r in self.results.items()},
            "gain_vs_random": self.gain(self.primary),
            "gain_vs_random_by_policy": {
                name: self.gain(name) for name in self.results if name != "random"
            },
            "wilcoxon_vs_random": self.versus("random"),
            "vs_best_other": None if best is None else self.versus(best),
        }


def full_data_score(
    dataset: Dataset,
    config: SimulationConfig,
    seed: int = 0,
    prepared: PreparedData | None = None,
) -> float:
    """Test score of the default model trained on every pool label (true labels)."""
    prepared = prepared or prepare_data(dataset, config.model)
    model = prepared.new_model(seed)
    data = prepared.dataset
    model.fit(data.X_train, data.y_train)
    return score_predictions(
        data.y_test, model.predict(data.X_test), metric=config.metric
    )


def _resolve(policy: str | BatchPolicy) -> tuple[str, BatchPolicy]:
    if isinstance(policy, BatchPolicy):
        return policy.name, policy
    resolved = load_policy(policy)
    label = Path(policy).stem if Path(policy).suffix else policy
    return label, resolved


def _run_one(
    dataset: Dataset,
    label: str,
    policy: BatchPolicy,
    config: SimulationConfig,
    seed: int,
    geometry: FloatArray | None,
    prepared: PreparedData,
) -> History:
    return run_simulation(
        dataset,
        policy,
        config=config,
        seed=seed,
        geometry=geometry,
        prepared=prepared,
        policy_label=label,
    )


def compare_policies(
    dataset: Dataset,
    policies: Sequence[str | BatchPolicy],
    *,
    config: SimulationConfig,
    seeds: Sequence[int],
    n_jobs: int = 1,
    progress: Callable[[History], None] | None = None,
) -> Comparison:
    """Run every policy, and random as the baseline, on the same seeds.

    Parameters
    ----------
    dataset : Dataset
        The labeled data.
    policies : sequence of str or BatchPolicy
        Policy names, policy files or specs; the first is the primary policy
        whose gain over random is reported. ``random`` is always added.
    config : SimulationConfig
        Budget, batch size, initial set, noise, metric, model.
    seeds : sequence of int
        Every policy runs on every seed; seed ``s`` fixes the initial labeled
        set and the oracle's noise for every policy alike.
    n_jobs : int, default=1
        Parallel processes (joblib); -1 uses every core.
    progress : callable, optional
        Called with each finished History (for progress bars).
    """
    resolved = dict(_resolve(p) for p in policies)
    primary = next(iter(resolved))
    if "random" not in resolved:
        resolved["random"] = load_policy("random")
    needs_geometry = any(
        p.required_inputs() & {"X", "X_labeled", "X_failures"}
        for p in resolved.values()
    )
    geometry = compute_geometry(dataset, seed=0) if needs_geometry else None
    prepared = prepare_data(dataset, config.model)
    tasks = [
        (label, policy, seed) for label, policy in resolved.items() for seed in seeds
    ]
    histories: list[History] = []
    if n_jobs == 1:
        for label, policy, seed in tasks:
            history = _run_one(dataset, label, policy, config, seed, geometry, prepared)
            histories.append(history)
            if progress is not None:
                progress(history)
    else:
        from joblib import Parallel, delayed

        runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        for history in runner(
            delayed(_run_one)(dataset, label, policy, config, seed, geometry, prepared)
            for label, policy, seed in tasks
        ):
            histories.append(history)
            if progress is not None:
                progress(history)
    reference = full_data_score(dataset, config, prepared=prepared)
    target = TARGET_SHARE * reference
    order = {seed: i for i, seed in enumerate(seeds)}
    results = {}
    for label, policy in resolved.items():
        runs = sorted(
            (h for h in histories if h.policy == label), key=lambda h: order[h.seed]
        )
        results[label] = PolicyResult(
            name=label,
            version=policy.version,
            histories=tuple(runs),
            metric=config.metric,
            target=target,
        )
    return Comparison(
        dataset=dataset.name,
        config=config,
        seeds=tuple(seeds),
        full_data_score=reference,
        results=results,
        primary=primary,
    )


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Learning curves with ±1 std bands, and the 95 % target line, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, result in comparison.results.items():
        curves = result.curves()
        mean = curves.mean(axis=0)
        std = curves.std(axis=0)
        x = result.labels
        style = "--" if name == "random" else "-"
        width = 2.2 if name == comparison.primary else 1.4
        (line,) = ax.plot(x, mean, style, lw=width, label=name)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.axhline(
        comparison.target,
        color="grey",
        lw=0.8,
        ls=":",
        label=f"95 % of full data ({comparison.full_data_score:.3f})",
    )
    ax.set_xlabel("labels")
    ax.set_ylabel(comparison.metric)
    noise = comparison.config.noise
    suffix = f", {noise:.0%} label noise" if noise else ""
    ax.set_title(
        f"{comparison.dataset}: {len(comparison.seeds)} seeds, batch "
        f"{comparison.config.batch_size}{suffix}"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
