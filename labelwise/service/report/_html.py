"""``render_html``: the report as one self-contained HTML page.

Plots are inline base64 PNGs and the CSS is inline: the file opens offline,
can be mailed, and references no URL. Every value is HTML-escaped.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from labelwise.service.report._plots import Plot, make_plots

__all__ = ["plot_img", "render_html"]

#: The page's stylesheet, inlined into every report.
_CSS_FILE = Path(__file__).with_name("report.css")


def plot_img(plot: Plot) -> str:
    """An ``<img>`` with the plot inline (a data: URI) and its title as alt text."""
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" alt="{escape(plot.title)}" '
        f'data-plot="{escape(plot.name)}">'
    )


def _figure(plot: Plot) -> str:
    return (
        f'<section class="card" id="plot-{escape(plot.name)}"><h2>'
        f"{escape(plot.title)}</h2><figure>{plot_img(plot)}<figcaption>"
        f"{escape(plot.caption)}</figcaption></figure></section>"
    )


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}{suffix}"
    return f"{value}{suffix}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f} %"


def _stat(label: str, value: str, key: str) -> str:
    return (
        f'<div class="stat" data-stat="{escape(key)}"><strong>{escape(value)}'
        f"</strong><span>{escape(label)}</span></div>"
    )


def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return (
        f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def summary_html(report: dict[str, Any]) -> str:
    """The verdict, the headline numbers and the stop recommendation (no plots)."""
    control = report["control_slice"]
    totals = report["totals"]
    stop = report["stop"]
    gold = report["gold"]
    errors = control["model_error"]
    drift = report["drift"]["score_shift"]
    parts = [
        f'<p class="verdict {escape(control["verdict"])}" id="verdict" '
        f'data-verdict="{escape(control["verdict"])}">'
        f"{escape(control['verdict_text'])}</p>",
        '<div class="stats">',
        _stat("labeled items", _fmt(totals["labeled_items"]), "labeled_items"),
        _stat("control labels", _fmt(totals["control_labels"]), "control_labels"),
        _stat("answers", _fmt(totals["answers"]), "answers"),
        _stat(
            "median s per answer",
            _fmt(report["time_per_item"]["overall"]["median_seconds"]),
            "median_seconds",
        ),
        _stat("gold error rate", _pct(gold["error_rate"]), "gold_error_rate"),
        _stat("error on control picks", _pct(errors["control"]), "control_error"),
        _stat("error on selected picks", _pct(errors["selected"]), "selected_error"),
        "</div>",
        f'<p id="stop"><strong>Stop recommendation: '
        f"{escape(stop['recommendation'])}.</strong> {escape(stop['reason'])}</p>",
        f'<p id="drift-note" class="muted">Drift: {escape(drift["note"])}</p>',
    ]
    return "".join(parts)


def _tables(report: dict[str, Any]) -> str:
    coverage = _table(
        [
            "label",
            "labels",
            "share of labels",
            "est. share of pool",
            "rare",
            "enrichment",
        ],
        [
            [
                r["label"],
                r["n_labels"],
                _pct(r["label_share"]),
                _pct(r["prevalence"]),
                "yes" if r["rare"] else "no",
                r["enrichment"],
            ]
            for r in report["coverage"]
        ],
        "coverage-table",
    )
    annotators = _table(
        ["annotator", "answers", "median s", "mean s"],
        [
            [r["annotator"], r["answers"], r["median_seconds"], r["mean_seconds"]]
            for r in report["time_per_item"]["by_annotator"]
        ],
        "time-by-annotator",
    )
    failures = report["failures"]
    return (
        '<div class="grid">'
        f'<section class="card"><h2>Class coverage</h2>{coverage}</section>'
        f'<section class="card"><h2>Time per item by annotator</h2>{annotators}'
        f'<p class="muted">Failures: {failures.get("items", 0)} failure items, '
        f"{failures.get('labeled', 0)} labeled.</p></section></div>"
    )


def render_html(report: dict[str, Any], plots: list[Plot] | None = None) -> str:
    """The whole report as one HTML page: inline CSS, inline PNGs, no script."""
    plots = make_plots(report) if plots is None else plots
    title = f"ROI report · {report['project']}"
    figures = "".join(_figure(p) for p in plots)
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS_FILE.read_text(encoding='utf-8')}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="muted">Generated {escape(report["generated_at"])} · model '
        f"{escape(report['model'])} · seed {report['seed']} · "
        f"{report['totals']['rounds']} rounds, "
        f"{report['totals']['model_versions']} model versions.</p>"
        f'<section class="card" id="summary">{summary_html(report)}</section>'
        f'<div class="grid">{figures}</div>'
        f"{_tables(report)}"
        "</main></body></html>\n"
    )
