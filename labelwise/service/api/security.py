"""Hardening at the edge: security headers, request size limits, a login limiter.

:func:`install_security` (one line in ``create_app``) wraps the whole app in
two pure ASGI middlewares (no ``BaseHTTPMiddleware``: they never buffer a
body or start a task) and puts a :class:`LoginLimiter` on ``app.state``:

- :class:`SecurityHeaders`: every response gets ``X-Content-Type-Options:
  nosniff``, ``X-Frame-Options: DENY`` and ``Referrer-Policy: same-origin``;
  every response but the API's interactive docs (Swagger UI needs inline
  script) gets a ``Content-Security-Policy`` that allows scripts and styles
  from this origin only: no inline script, no ``eval``, no framing;
- :class:`BodyLimit`: a request body larger than ``settings.max_body_bytes``
  (``settings.max_upload_bytes`` for the dashboard's file import) is refused
  with 413 in the one JSON error body, before the route runs: at once when
  ``Content-Length`` says so, else as soon as the streamed body passes the
  limit (the route's read then fails as if the client had gone: nothing is
  written, and its answer is dropped);
- :class:`LoginLimiter`: failed UI logins per (name, client address) and per
  client address in a sliding window; past the limit, ``POST /login``
  answers 429 with ``Retry-After`` without checking the password. It lives
  **in the process**: with several ``labelwise serve`` processes each keeps
  its own counts (the limit is per process; the schema has no table for it).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labelwise.service.api.errors import error_response
from labelwise.service.settings import Settings

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "BodyLimit",
    "LoginLimiter",
    "SecurityHeaders",
    "install_security",
    "is_upload_path",
]

logger = logging.getLogger("labelwise.api")
#: Keys (name and address pairs) the login limiter keeps before it prunes idle ones.
_MAX_KEYS = 10_000
#: The UI's policy: this origin's scripts and styles only; images may come
#: from http(s) URLs in item fields (the annotator page shows them), and the
#: empty data: favicon of base.html.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' http: https: data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_STATIC_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
)
#: Pages that carry their own inline script (FastAPI's Swagger UI).
_NO_CSP_PREFIXES = ("/api/v1/docs",)


class SecurityHeaders:
    """Add the security headers to every HTTP response (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = not str(scope.get("path", "")).startswith(_NO_CSP_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _STATIC_HEADERS:
                    headers.setdefault(name, value)
                if csp:
                    headers.setdefault(
                        "content-security-policy", CONTENT_SECURITY_POLICY
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_upload_path(path: str) -> bool:
    """Whether ``path`` takes a file upload (the dashboard's import form)."""
    return path.startswith("/projects/") and path.endswith("/dashboard/import")


def _payload_too_large(limit: int, what: str) -> Any:
    setting = "max_upload_bytes" if what == "upload" else "max_body_bytes"
    return error_response(
        413,
        "payload_too_large",
        f"The request body is larger than the limit of {limit} bytes for "
        f"{'a file import' if what == 'upload' else 'this request'}; nothing was "
        "read or saved.",
        hint=f"Send less (split a big import into several files), or raise "
        f"LABELWISE_{setting.upper()} on the server.",
    )


class BodyLimit:
    """Refuse request bodies over the limit with 413 (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = is_upload_path(str(scope.get("path", "")))
        limit = self.max_upload if upload else self.max_body
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = _payload_too_large(limit, "upload" if upload else "body")
            await response(scope, receive, send)
            return
        seen, refused, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer 413 now; the route sees a client that went away
                    # (its read fails before it ran) and whatever it answers
                    # is dropped below.
                    refused = True
                    if not started:
                        response = _payload_too_large(
                            limit, "upload" if upload else "body"
                        )
                        await response(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise
            # The 413 went out; the route failed on the body we cut short.
            logger.debug("request body over %d bytes refused: %s", limit, scope["path"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class LoginLimiter:
    """Failed logins per (name, address) and per address in a sliding window.

    Thread-safe; in-process (see the module docstring).
    """

    def __init__(
        self,
        *,
        per_name: int = 5,
        per_address: int = 30,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_name = per_name
        self.per_address = per_address
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, name: str, address: str) -> int:
        """Seconds until ``name`` may try again from ``address`` (0: now)."""
        now = self.clock()
        with self._lock:
            waits = []
            for key, limit in (
                ((name.casefold(), address), self.per_name),
                (("", address), self.per_address),
            ):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[len(times) - limit] + self.window - now)
            return math.ceil(max(waits)) if waits else 0

    def failed(self, name: str, address: str) -> None:
        """Count one failed login."""
        now = self.clock()
        with self._lock:
            for key in ((name.casefold(), address), ("", address)):
                self._recent(key, now).append(now)
            if len(self._failures) > _MAX_KEYS:  # forget idle keys, bound the memory
                idle = [
                    key
                    for key, times in self._failures.items()
                    if not times or times[-1] <= now - self.window
                ]
                for key in idle:
                    del self._failures[key]

    def succeeded(self, name: str, address: str) -> None:
        """Forget the failures of ``name`` from ``address``."""
        with self._lock:
            self._failures.pop((name.casefold(), address), None)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Wrap ``app`` in the body limit and security headers; add the login limiter."""
    app.state.login_limiter = LoginLimiter()
    app.add_middleware(
        BodyLimit,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
    )
    app.add_middleware(SecurityHeaders)
