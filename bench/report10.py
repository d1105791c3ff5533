"""Issue #10 report: tables and plots from ``bench/efficiency10.py``'s JSON files.

Usage: python bench/report10.py [RUNS_DIR] [OUT_DIR]
(defaults: bench/results/efficiency10/runs and bench/results/efficiency10)

Writes ``OUT_DIR/results.md`` (the wide per-case table and the long per-policy
table), ``OUT_DIR/summary.json``, one learning-curve PNG per case in
``OUT_DIR/curves/`` and ``OUT_DIR/summary.png``.

Statistics: for each case the AULC of every policy is paired by seed (same split,
same initial set, same oracle noise per seed). p-values are the two-sided Wilcoxon
signed-rank test (``scipy.stats.wilcoxon``) of the per-seed AULC differences;
intervals are 95 % t-intervals of the mean paired difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from labelwise.metrics import paired_gain

HERE = Path(__file__).resolve().parent
DEFAULT_RUNS = HERE / "results" / "efficiency10" / "runs"
DEFAULT_OUT = HERE / "results" / "efficiency10"
TARGET_SHARE = 0.95
PRIMARY = "default"
SKAL_PREFIX = "skal_"
MIN_SEEDS = 5
#: Seeds of a finished case (bench/run10.sh: --seeds 20).
FULL_SEEDS = 20
#: A policy with fewer seeds than this share of the case's most is left out of it.
COVERAGE = 0.8


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired ``a - b`` (1.0 if all equal)."""
    p = paired_gain(a, b, method="wilcoxon").p_value
    return float("nan") if p is None else p


def interval(diff: np.ndarray) -> tuple[float, float]:
    """95 % t-interval half-width of the mean of ``diff`` (and the mean)."""
    mean = float(diff.mean())
    if diff.size < 2:
        return mean, float("nan")
    half = float(
        stats.t.ppf(0.975, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size)
    )
    return mean, half


def load_case(path: Path) -> dict[str, Any] | None:
    """One case: per-policy AULC and curves on the seeds every policy finished."""
    record = json.loads(path.read_text())
    by_policy: dict[str, dict[int, dict[str, Any]]] = {}
    for run in record["runs"]:
        by_policy.setdefault(run["policy"], {})[run["seed"]] = run
    if PRIMARY not in by_policy or "random" not in by_policy:
        return None
    # A policy added to the grid later (a candidate) may have fewer seeds than
    # the rest: it is left out of this case rather than shrinking every
    # policy's paired sample to its seeds.
    most = max(len(v) for v in by_policy.values())
    by_policy = {
        name: runs
        for name, runs in by_policy.items()
        if len(runs) >= COVERAGE * most or name in (PRIMARY, "random")
    }
    seeds = sorted(set.intersection(*(set(v) for v in by_policy.values())))
    if len(seeds) < MIN_SEEDS:
        return None
    policies = {}
    for name, runs in by_policy.items():
        chosen = [runs[s] for s in seeds]
        policies[name] = {
            "aulc": np.array([r["aulc"] for r in chosen]),
            "curves": np.array([r["accuracy"] for r in chosen]),
            "labels": np.array(chosen[0]["labels"]),
            "seconds": float(np.mean([r["seconds"] for r in chosen])),
            "label_errors": float(np.mean([r["label_errors"] for r in chosen])),
        }
    record["seeds"] = seeds
    record["policies"] = policies
    record["target"] = TARGET_SHARE * record["full_data_score"]
    return record


def labels_to_target(policy: dict[str, Any], target: float) -> int | None:
    mean = policy["curves"].mean(axis=0)
    hit = np.flatnonzero(mean >= target)
    return int(policy["labels"][hit[0]]) if hit.size else None


def summarise(case: dict[str, Any], order: list[str]) -> dict[str, Any]:
    pol = case["policies"]
    default = pol[PRIMARY]["aulc"]
    others = [n for n in order if n in pol and n != PRIMARY]
    best = max(others, key=lambda n: pol[n]["aulc"].mean())
    skal = [n for n in others if n.startswith(SKAL_PREFIX)]
    best_skal = max(skal, key=lambda n: pol[n]["aulc"].mean()) if skal else None
    out: dict[str, Any] = {
        "case": case["case"],
        "dataset": case["dataset"],
        "noise": case["noise"],
        "batch": case["config"]["batch_size"],
        "budget": case["config"]["budget"],
        "n_seeds": len(case["seeds"]),
        "n_pool": case["n_pool"],
        "n_classes": case["n_classes"],
        "full_data_score": case["full_data_score"],
        "policies": {
            n: {
                "aulc_mean": float(pol[n]["aulc"].mean()),
                "aulc_std": float(pol[n]["aulc"].std()),
                "labels_to_95": labels_to_target(pol[n], case["target"]),
                "seconds_per_run": pol[n]["seconds"],
            }
            for n in order
            if n in pol
        },
        "best_other": best,
        "best_skactiveml": best_skal,
    }
    for label, other in (("random", "random"), ("best", best), ("skal", best_skal)):
        if other is None:
            continue
        diff = default - pol[other]["aulc"]
        mean, half = interval(diff)
        out[f"vs_{label}"] = {
            "policy": other,
            "delta": mean,
            "ci95": half,
            "p_wilcoxon": wilcoxon_p(default, pol[other]["aulc"]),
            "p_ttest": float(stats.ttest_rel(default, pol[other]["aulc"]).pvalue)
            if not np.allclose(diff, diff[0])
            else 1.0,
        }
    return out


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def wide_table(rows: list[dict[str, Any]], order: list[str]) -> str:
    head = [
        "case",
        "budget/batch",
        *order,
        "p default vs random",
        "best other",
        "p default vs best",
        "best scikit-activeml",
        "p default vs it",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        size = f"{row['budget']}/{row['batch']}"
        if row["n_seeds"] < FULL_SEEDS:
            # A case the grid has not finished: say how many seeds it has.
            size += f" ({row['n_seeds']} seeds)"
        cells = [row["case"], size]
        best_aulc = max(v["aulc_mean"] for v in row["policies"].values())
        for name in order:
            v = row["policies"].get(name)
            if v is None:
                cells.append("—")
                continue
            reach = v["labels_to_95"]
            text = (
                f"{v['aulc_mean'] * 100:.1f} ± {v['aulc_std'] * 100:.1f} "
                f"({'—' if reach is None else reach})"
            )
            cells.append(f"**{text}**" if v["aulc_mean"] == best_aulc else text)
        vr, vb = row["vs_random"], row["vs_best"]
        cells.append(f"{vr['delta'] * 100:+.2f} (p {_p(vr['p_wilcoxon'])})")
        cells.append(vb["policy"])
        cells.append(f"{vb['delta'] * 100:+.2f} (p {_p(vb['p_wilcoxon'])})")
        vs = row.get("vs_skal")
        cells.append(vs["policy"] if vs else "—")
        cells.append(
            f"{vs['delta'] * 100:+.2f} (p {_p(vs['p_wilcoxon'])})" if vs else "—"
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_case(case: dict[str, Any], order: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    for name in order:
        if name not in case["policies"]:
            continue
        pol = case["policies"][name]
        curves, x = pol["curves"] * 100, pol["labels"]
        mean = curves.mean(axis=0)
        half = (
            stats.t.ppf(0.975, len(curves) - 1)
            * curves.std(axis=0, ddof=1)
            / np.sqrt(len(curves))
        )
        style = (
            "--" if name == "random" else (":" if name.startswith(SKAL_PREFIX) else "-")
        )
        width = 2.4 if name == PRIMARY else 1.2
        color = "black" if name == PRIMARY else None
        (line,) = ax.plot(x, mean, style, lw=width, label=name, color=color)
        ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.12)
    ax.axhline(
        case["target"] * 100,
        color="grey",
        lw=0.8,
        ls="-.",
        label=f"95 % of full data ({case['full_data_score'] * 100:.1f})",
    )
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"{case['case']}: mean ± 95 % CI over {len(case['seeds'])} seeds, "
        f"pool {case['n_pool']}"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_summary(rows: list[dict[str, Any]], path: Path) -> None:
    rows = sorted(rows, key=lambda r: r["case"], reverse=True)
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.6), dpi=110)
    for key, color, offset, label in (
        ("vs_random", "tab:blue", 0.18, "default − random"),
        ("vs_skal", "tab:orange", -0.18, "default − best scikit-activeml"),
    ):
        pts = [(i, r[key]) for i, r in enumerate(rows) if key in r]
        if not pts:
            continue
        idx = np.array([i for i, _ in pts]) + offset
        mean = np.array([v["delta"] for _, v in pts]) * 100
        half = np.array([v["ci95"] for _, v in pts]) * 100
        ax.errorbar(
            mean, idx, xerr=half, fmt="o", ms=3.5, color=color, capsize=2, label=label
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([r["case"] for r in rows], fontsize=7)
    ax.set_xlabel("AULC difference (accuracy points), mean and 95 % CI over seeds")
    ax.set_title(
        "The default policy against random and the best scikit-activeml strategy"
    )
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def policy_order(cases: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for case in cases:
        for name in case["policies"]:
            if name not in seen:
                seen.append(name)
    first = [n for n in (PRIMARY, "random") if n in seen]
    lib = [n for n in seen if n not in first and not n.startswith(SKAL_PREFIX)]
    skal = [n for n in seen if n.startswith(SKAL_PREFIX)]
    return first + lib + skal


def main(runs: Path, out: Path) -> None:
    cases = [c for p in sorted(runs.glob("*.json")) if (c := load_case(p))]
    if not cases:
        raise SystemExit(f"no finished case in {runs}")
    order = policy_order(cases)
    rows = [summarise(c, order) for c in cases]
    (out / "curves").mkdir(parents=True, exist_ok=True)
    for case in cases:
        plot_case(case, order, out / "curves" / f"{case['case']}.png")
    plot_summary(rows, out / "summary.png")
    (out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    worse = [
        r["case"]
        for r in rows
        if r["vs_random"]["delta"] < 0 and r["vs_random"]["p_wilcoxon"] < 0.05
    ]
    below_skal = [
        r["case"]
        for r in rows
        if "vs_skal" in r
        and r["vs_skal"]["delta"] < 0
        and r["vs_skal"]["p_wilcoxon"] < 0.05
    ]
    with_skal = [r for r in rows if "vs_skal" in r]
    level = [r["case"] for r in with_skal if r["vs_skal"]["delta"] >= 0]
    text = [
        "Cells: AULC ± std over seeds, in accuracy points (labels to reach 95 % of the "
        "full-data score, — = not within the budget); bold = best policy of the case. "
        "Δ and p: default minus the other policy, paired by seed, two-sided Wilcoxon "
        "signed-rank test.\n",
        wide_table(rows, order),
        f"\nDefault significantly worse than random (p < 0.05): {worse or 'none'}.  ",
        f"Default significantly worse than the best scikit-activeml strategy: "
        f"{below_skal or 'none'} (of {len(with_skal)} cases).  ",
        f"Default at least as good as the best scikit-activeml strategy: "
        f"{len(with_skal) - len(below_skal)} of {len(with_skal)} cases not "
        f"significantly worse; {len(level)} of {len(with_skal)} with a mean AULC "
        f"as high or higher.\n",
    ]
    (out / "results.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        Path(args[0]) if args else DEFAULT_RUNS,
        Path(args[1]) if len(args) > 1 else DEFAULT_OUT,
    )
