"""The dashboard's ROI section: the cached report's verdict, numbers and key plots.

The report is shared with ``GET /api/v1/projects/{project}/report`` through
the app's :class:`~labelwise.service.report.ReportCache`. The report takes
seconds, so the dashboard never waits for it: it shows the newest report
there is and a background thread brings it up to date (reload to see it).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from markupsafe import Markup

from labelwise.service.api.routes.report import report_cache
from labelwise.service.report import plot_img, summary_html
from labelwise.service.ui.routes_review import ui_session_factory

__all__ = ["ROI_PLOTS", "roi_context"]

#: The plots the dashboard shows, in order (the HTML report has them all).
ROI_PLOTS = ("control_curve", "model_versions", "control_error", "labels_per_week")


def roi_context(request: Request, project_id: int) -> dict[str, Any]:
    """What ``_roi.html`` shows: summary and plots, whether current, or a problem."""
    cached, current, error = report_cache(request).latest(
        ui_session_factory(request), project_id
    )
    if cached is None:
        return {"error": error, "pending": error is None, "summary": None, "plots": []}
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
        "pending": False,
        "stale": not current,
        "summary": Markup(summary_html(cached.report)),
        "plots": plots,
        "generated_at": cached.report["generated_at"],
    }
