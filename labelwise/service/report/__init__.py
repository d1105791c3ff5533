"""The ROI and monitoring report: figures from the store, one HTML file, a cache.

- :func:`build_report`: every figure as a JSON-safe dict (docs/report.md);
- :func:`render_html`: that dict as one self-contained HTML page with plots;
- :class:`ReportCache`: the last report per project, keyed by what changes it;
- :func:`simulate_labeling`: a project whose truth is known, run through the
  real loop (tests, screenshots, docs).
"""

from __future__ import annotations

from labelwise.service.report._build import REPORT_VERSION, Progress, build_report
from labelwise.service.report._cache import CachedReport, ReportCache, report_key
from labelwise.service.report._control import (
    BEATING,
    INCONCLUSIVE,
    NOT_BEATING,
    VERDICTS,
)
from labelwise.service.report._html import plot_img, render_html, summary_html
from labelwise.service.report._plots import Plot, make_plots
from labelwise.service.report._scenario import ScenarioResult, simulate_labeling

__all__ = [
    "BEATING",
    "INCONCLUSIVE",
    "NOT_BEATING",
    "REPORT_VERSION",
    "VERDICTS",
    "CachedReport",
    "Plot",
    "Progress",
    "ReportCache",
    "ScenarioResult",
    "build_report",
    "make_plots",
    "plot_img",
    "render_html",
    "report_key",
    "simulate_labeling",
    "summary_html",
]
