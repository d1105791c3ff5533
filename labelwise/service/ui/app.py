"""``mount_ui(app, settings)``: the web UI on the API's app.

``create_app`` calls it. It adds the signed session cookie (Starlette's
``SessionMiddleware`` keyed by ``settings.secret_key``), the static files at
``/static``, the UI routers (:data:`UI_ROUTERS`) and two error handlers:
:class:`~labelwise.service.ui.auth.LoginRequired` (pages redirect to
``/login``, ``/ui/api/…`` answers 401 JSON) and
:class:`~labelwise.service.ui.auth.CsrfRejected` (403: an HTML page for
forms, the JSON error body under ``/ui/api/``).
"""

from __future__ import annotations

import importlib
import importlib.util
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse, Response

from labelwise.service.api.errors import error_response
from labelwise.service.settings import Settings
from labelwise.service.ui.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    CsrfRejected,
    LoginRequired,
)
from labelwise.service.ui.templating import STATIC_DIR, render

__all__ = ["JSON_PREFIX", "UI_ROUTERS", "mount_ui"]

#: Where the page scripts' JSON endpoints live.
JSON_PREFIX = "/ui/api"
#: UI modules (in this package) whose ``router`` is mounted, if present.
UI_ROUTERS = (
    "routes_auth",
    "routes_annotate",
    "routes_review",
    "routes_lead",
    "routes_calibration",
    "routes_training",
    "routes_scores",
)


def _is_json(request: Request) -> bool:
    return request.url.path.startswith(JSON_PREFIX + "/")


def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if _is_json(request):
        return error_response(
            401,
            "not_authenticated",
            "This page's data needs a login; the session is missing or ended.",
            hint="Log in again at /login.",
        )
    target = "/login"
    if exc.next_path and exc.next_path != "/":
        target += "?next=" + quote(exc.next_path, safe="")
    return RedirectResponse(target, status_code=303)


def _csrf_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRejected)
    if _is_json(request):
        return error_response(403, exc.code, exc.message, hint=exc.hint)
    return render(
        request,
        "error.html",
        {"title": "Refused", "message": exc.message, "hint": exc.hint},
        status_code=403,
    )


def mount_ui(app: FastAPI, settings: Settings) -> None:
    """Add the session middleware, static files, UI routes and handlers to ``app``."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=False,
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    for name in UI_ROUTERS:
        module_name = f"{__package__}.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        app.include_router(module.router, include_in_schema=False)
