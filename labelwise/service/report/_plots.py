"""The report's plots: matplotlib figures drawn from the report dict, as PNG bytes.

Every plot reads only the JSON figures (never the store), so the HTML file,
the dashboard and a saved ``--json`` draw the same pictures. Each comes with
a one-sentence caption saying how to read it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Plot", "make_plots"]

_CONTROL = "#8a8f98"
_LOOP = "#4f6bd8"
_WARN = "#d4622a"


@dataclass(frozen=True)
class Plot:
    """One rendered plot: a stable name, its title, caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def _figure(width: float = 6.0, height: float = 3.4) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.grid(alpha=0.3)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _control_curve(report: dict[str, Any]) -> bytes | None:
    control = report["control_slice"]
    points = control["learning_curve"]
    if not points:
        return None
    metric = control["metric"]
    fig, ax = _figure()
    ks = [p["k"] for p in points]
    for arm, colour, label, style in (
        ("all", _LOOP, "loop's labels (drawn from all)", "-"),
        ("control", _CONTROL, "random control labels only", "--"),
    ):
        mean = [p[f"{arm}_{metric}"] for p in points]
        if metric == "macro_f1":
            std = [p[f"{arm}_macro_f1_std"] for p in points]
            low = [m - s for m, s in zip(mean, std, strict=True)]
            high = [m + s for m, s in zip(mean, std, strict=True)]
            ax.fill_between(ks, low, high, color=colour, alpha=0.15)
        ax.plot(ks, mean, style, marker="o", color=colour, lw=2, label=label)
    ax.set_xlabel("labels used for training")
    ax.set_ylabel(f"validation {metric.replace('_', '-')}")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _model_versions(report: dict[str, Any]) -> bytes | None:
    rows = [r for r in report["model_versions"] if r["macro_f1"] is not None]
    if not rows:
        return None
    fig, ax = _figure()
    n = [r["n_labels"] for r in rows]
    ax.plot(n, [r["macro_f1"] for r in rows], "-o", color=_LOOP, label="macro-F1")
    ax.plot(n, [r["accuracy"] for r in rows], "-s", color=_CONTROL, label="accuracy")
    ax.set_xlabel("labels the model version was trained on")
    ax.set_ylabel("validation score")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _labels_per_week(report: dict[str, Any]) -> bytes | None:
    weeks = report["labels_per_week"]
    if not weeks:
        return None
    fig, ax = _figure()
    names = [w["week"] for w in weeks]
    ax.bar(names, [w["answers"] for w in weeks], color=_LOOP)
    ax.set_ylabel("answers")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    return _png(fig)


def _time_by_reason(report: dict[str, Any]) -> bytes | None:
    rows = [r for r in report["time_per_item"]["by_reason"] if r["median_seconds"]]
    if not rows:
        return None
    fig, ax = _figure(height=max(2.2, 0.5 * len(rows) + 1.2))
    names = [r["reason"] for r in rows]
    ax.barh(names, [r["median_seconds"] for r in rows], color=_LOOP)
    ax.set_xlabel("median seconds per answer")
    return _png(fig)


def _control_error(report: dict[str, Any]) -> bytes | None:
    rows = report["drift"]["control_error_by_round"]
    if not rows:
        return None
    fig, ax = _figure()
    x = [r["round"] for r in rows]
    for arm, colour, label, style in (
        ("control", _CONTROL, "random control picks", "--"),
        ("selected", _LOOP, "selected picks", "-"),
    ):
        pairs = [(a, r[f"{arm}_error"]) for a, r in zip(x, rows, strict=True)]
        shown = [(a, e) for a, e in pairs if e is not None]
        if shown:
            ax.plot(
                *zip(*shown, strict=True), style, marker="o", color=colour, label=label
            )
    ax.set_xlabel("round")
    ax.set_ylabel("error of the model before the round")
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def _coverage(report: dict[str, Any]) -> bytes | None:
    rows = report["coverage"]
    if not rows or all(r["label_share"] is None for r in rows):
        return None
    fig, ax = _figure(height=max(2.4, 0.45 * len(rows) + 1.2))
    names = [r["label"] for r in rows]
    positions = list(range(len(rows)))
    ax.barh(
        [p + 0.2 for p in positions],
        [r["label_share"] or 0.0 for r in rows],
        height=0.4,
        color=_LOOP,
        label="share of the labels",
    )
    ax.barh(
        [p - 0.2 for p in positions],
        [r["prevalence"] or 0.0 for r in rows],
        height=0.4,
        color=_CONTROL,
        label="share of the pool (estimated)",
    )
    ax.set_yticks(positions, names)
    ax.set_xlabel("share")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _gold_and_agreement(report: dict[str, Any]) -> bytes | None:
    gold = report["gold"]["by_week"]
    agreement = report["agreement"]["by_week"]
    if not gold and not agreement:
        return None
    fig, ax = _figure()
    if gold:
        ax.plot(
            [g["week"] for g in gold],
            [g["error_rate"] for g in gold],
            "-o",
            color=_WARN,
            label="error rate on gold items",
        )
    if agreement:
        ax.plot(
            [a["week"] for a in agreement],
            [1.0 - a["share"] for a in agreement],
            "--s",
            color=_CONTROL,
            label="disagreement on overlap items",
        )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("share")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def _drift(report: dict[str, Any]) -> bytes | None:
    shift = report["drift"]["score_shift"]
    histogram = shift.get("histogram")
    if not histogram:
        return None
    fig, ax = _figure()
    edges = histogram["edges"]
    centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    width = (edges[1] - edges[0]) * 0.4
    for counts, colour, label, offset in (
        (histogram["rest"], _CONTROL, "older pool", -width / 2),
        (histogram["newest"], _LOOP, "newest import", width / 2),
    ):
        total = sum(counts) or 1
        ax.bar(
            [c + offset for c in centres],
            [n / total for n in counts],
            width=width,
            color=colour,
            label=label,
        )
    ax.set_xlabel("model confidence (max probability)")
    ax.set_ylabel("share of items")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


_PLOTS: list[tuple[str, str, str, Callable[[dict[str, Any]], bytes | None]]] = [
    (
        "control_curve",
        "Loop vs random: learning curves",
        "Validation score of the default model trained on k labels drawn from all "
        "the loop's labels (solid) or on k random control-slice labels only "
        "(dashed), same k, several draws (bands: ±1 std). Solid above dashed "
        "means the loop's picks teach the model more than random picks.",
        _control_curve,
    ),
    (
        "model_versions",
        "Validation score per model version",
        "The real project's learning curve: each model version's score on the "
        "fixed validation set against the labels it was trained on.",
        _model_versions,
    ),
    (
        "control_error",
        "Model error on control vs selected picks",
        "Each round's picks scored by the model trained before that round: "
        "selected picks should be harder (higher error) than random ones; a "
        "rising control error means the model got worse on typical items.",
        _control_error,
    ),
    (
        "labels_per_week",
        "Labels per week",
        "Answers given by annotators each ISO week; a drop means the team's "
        "throughput fell.",
        _labels_per_week,
    ),
    (
        "time_by_reason",
        "Time per item by reason",
        "Median seconds an answer took, by why the item was picked; hard "
        "(uncertain) items usually take longer.",
        _time_by_reason,
    ),
    (
        "quality",
        "Gold error and disagreement per week",
        "Share of wrong answers on gold items (the stable QA set) and share of "
        "overlap items whose answers disagree; rising lines mean label quality "
        "is slipping.",
        _gold_and_agreement,
    ),
    (
        "coverage",
        "Coverage of the classes",
        "Each class's share of the labels next to its estimated share of the "
        "pool; a rare class with a longer blue bar is being found more often "
        "than random labelling would find it.",
        _coverage,
    ),
    (
        "drift",
        "Score drift of the newest import",
        "How confident the current model is on the newest imported items and "
        "on the older pool; different shapes mean the new data differs.",
        _drift,
    ),
]


def make_plots(report: dict[str, Any], names: list[str] | None = None) -> list[Plot]:
    """The plots the report's figures allow (those without data are left out)."""
    out = []
    for name, title, caption, draw in _PLOTS:
        if names is not None and name not in names:
            continue
        png = draw(report)
        if png is not None:
            out.append(Plot(name, title, caption, png))
    return out
