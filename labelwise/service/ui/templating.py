"""Jinja2 templates of the UI: :func:`render` fills in the common context.

Every template gets ``member`` (the logged-in Member or None), ``csrf_token``
(put it in every form as ``<input type="hidden" name="csrf_token" …>`` and
send it as the ``X-CSRF-Token`` header on JSON posts) and ``static(path)``.
Autoescaping is on for every ``.html`` template: item data is never markup.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "render", "templates"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The UI's template loader (built on first use, not at import)."""
    return Jinja2Templates(directory=str(TEMPLATE_DIR))


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    member: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The template ``name`` rendered with ``context`` plus the common context."""
    from labelwise.service.ui.auth import csrf_token

    full: dict[str, Any] = {
        "member": member,
        "csrf_token": csrf_token(request),
        **(context or {}),
    }
    return templates().TemplateResponse(
        request, name, full, status_code=status_code, headers=headers
    )
