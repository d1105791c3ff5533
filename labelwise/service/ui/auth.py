"""Login sessions and CSRF for the UI.

The session is Starlette's signed cookie (``SessionMiddleware``, signed with
``settings.secret_key`` by itsdangerous; ``HttpOnly``, ``SameSite=Lax``). It
holds only ``uid`` (the member id) and ``csrf`` (a random token); never a
password or an API token.

How other UI routes use this module:

- ``member: UIMember`` (a dependency): the logged-in, active member, loaded
  in a short read-only session (a detached object: read its columns, pass it
  to use-cases). Without a login, pages redirect to ``/login?next=…`` and
  paths under ``/ui/api/`` answer 401 with the JSON error body.
- :func:`current_ui_member` ``(request, session=None)``: the same member or
  ``None``, loaded in ``session`` when given (use it inside the route's own
  ``transaction(factory)``).
- :func:`require_csrf` ``(request, form)``: call it first in every form POST
  handler (``form = await request.form()``); it raises :class:`CsrfRejected`
  (403, nothing changed) unless ``form["csrf_token"]`` matches the session.
  Templates put the token in forms with
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``.
- ``_: CsrfHeader`` (a dependency): the same check for JSON posts, reading
  the ``X-CSRF-Token`` header (``base.html`` exposes the token as
  ``<meta name="csrf-token">`` for scripts).
- :func:`log_in` / :func:`log_out`: start a fresh session (new CSRF token)
  or clear it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from labelwise.exceptions import PermissionDenied
from labelwise.service.store.engine import read_only
from labelwise.service.store.schema import Member

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CsrfHeader",
    "CsrfRejected",
    "LoginRequired",
    "UIMember",
    "check_csrf_header",
    "csrf_token",
    "current_ui_member",
    "log_in",
    "log_out",
    "require_csrf",
    "require_ui_member",
]

SESSION_COOKIE = "labelwise_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: How long a login lasts without a new login (seconds).
SESSION_MAX_AGE = 14 * 24 * 3600
_UID, _CSRF = "uid", "csrf"


class CsrfRejected(PermissionDenied):
    """A form or JSON post without the session's CSRF token (403)."""

    code = "csrf_rejected"


class LoginRequired(Exception):
    """No logged-in member: pages redirect to /login, /ui/api answers 401."""

    def __init__(self, next_path: str = "/") -> None:
        super().__init__("login required")
        self.next_path = next_path


def _session(request: Request) -> dict[str, Any]:
    data: dict[str, Any] = request.session
    return data


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created when the session has none."""
    data = _session(request)
    token = data.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        data[_CSRF] = token
    return token


def _matches(request: Request, given: object) -> bool:
    expected = _session(request).get(_CSRF)
    return (
        isinstance(expected, str)
        and bool(expected)
        and isinstance(given, str)
        and secrets.compare_digest(expected.encode(), given.encode())
    )


def _rejected(where: str) -> CsrfRejected:
    return CsrfRejected(
        f"Expected the page's CSRF token in {where}; it is missing or does not "
        "match this session. Nothing was changed.",
        hint="Reload the page (your session may have ended) and try again.",
    )


def require_csrf(request: Request, form: Mapping[str, Any]) -> None:
    """Raise CsrfRejected unless ``form`` carries this session's CSRF token."""
    if not _matches(request, form.get(CSRF_FIELD)):
        raise _rejected(f"the form field {CSRF_FIELD!r}")


def check_csrf_header(request: Request) -> None:
    """A dependency: raise CsrfRejected unless the X-CSRF-Token header matches."""
    if not _matches(request, request.headers.get(CSRF_HEADER)):
        raise _rejected(f"the header {CSRF_HEADER!r}")


CsrfHeader = Annotated[None, Depends(check_csrf_header)]


def log_in(request: Request, member: Member) -> None:
    """Start a fresh session for ``member`` (a new CSRF token too)."""
    data = _session(request)
    data.clear()
    data[_UID] = int(member.id)
    data[_CSRF] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    """End the session."""
    _session(request).clear()


def _factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def current_ui_member(
    request: Request, session: Session | None = None
) -> Member | None:
    """The logged-in active member (loaded in ``session`` if given), or None."""
    uid = _session(request).get(_UID)
    if not isinstance(uid, int):
        return None
    if session is not None:
        member = session.get(Member, uid)
    else:
        with read_only(_factory(request)) as own:
            member = own.get(Member, uid)
    if member is None or not member.active:
        return None
    return member


def require_ui_member(request: Request, session: Session | None = None) -> Member:
    """The logged-in active member, else LoginRequired (redirect or 401)."""
    member = current_ui_member(request, session)
    if member is None:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise LoginRequired(path if request.method == "GET" else "/")
    return member


def _member_dependency(request: Request) -> Member:
    return require_ui_member(request)


UIMember = Annotated[Member, Depends(_member_dependency)]
