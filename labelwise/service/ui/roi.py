"""The dashboard's ROI section: the cached report's verdict, numbers and key plots.

The report is shared with ``GET /api/v1/projects/{project}/report`` through
the app's :class:`~labelwise.service.report.ReportCache`; the dashboard route
is synchronous, so a recomputation runs in Starlette's worker thread, never
on the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from markupsafe import Markup

from labelwise.exceptions import LabelwiseError
from labelwise.service.api.routes.report import report_cache
from labelwise.service.report import plot_img, summary_html
from labelwise.service.ui.routes_review import ui_session_factory

__all__ = ["ROI_PLOTS", "roi_context"]

#: The plots the dashboard shows, in order (the HTML report has them all).
ROI_PLOTS = ("control_curve", "model_versions", "control_error", "labels_per_week")


def roi_context(request: Request, project_id: int) -> dict[str, Any]:
    """What ``_roi.html`` shows: summary, plots, or the problem that stopped it."""
    try:
        cached = report_cache(request).get(
            ui_session_factory(request), project_id, plots=True
        )
    except LabelwiseError as exc:
        return {"error": str(exc), "summary": None, "plots": [], "report": None}
    by_name = {plot.name: plot for plot in cached.plots}
    plots = [
        {
            "name": name,
            "title": by_name[name].title,
            "caption": by_name[name].caption,
            "img": Markup(plot_img(by_name[name])),
        }
        for name in ROI_PLOTS
        if name in by_name
    ]
    return {
        "error": None,
        "summary": Markup(summary_html(cached.report)),
        "plots": plots,
        "report": cached.report,
    }
