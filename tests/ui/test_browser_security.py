"""The UI in Chromium under its Content-Security-Policy, and hostile image fields.

- every page works with the policy the server sends (no inline script): the
  browser reports no CSP violation on the login, projects and annotator pages,
  and the annotator page still shows its item;
- an item field that looks like an image path but climbs out of its folder
  (``../``, ``%2e%2e``, a backslash) or names another host (``//host``) is
  shown as text, never fetched as an ``<img>``; a plain relative image path
  still is fetched.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_browser import log_in, shown_lease

pytestmark = pytest.mark.browser

HOSTILE = [
    "../../../../etc/passwd.png",
    "img/../../secret.png",
    "%2e%2e/%2e%2e/secret.jpg",
    "..\\..\\secret.png",
    "//evil.example/x.png",
]
FINE = "img/cat.png"


def test_pages_run_under_the_content_security_policy(page, server, js_errors):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    response = page.goto("/login")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page, server, "ana", "/projects/tickets/annotate")
    shown_lease(page)
    assert page.text_content("#item-text")
    page.goto("/")
    assert violations == []
    assert js_errors == []


def test_image_fields_that_climb_out_are_shown_as_text(page, server, js_errors):
    fields: dict[str, Any] = {"text": "A ticket with pictures", "photo_ok": FINE}
    fields.update({f"photo_{i}": value for i, value in enumerate(HOSTILE)})
    fake = {
        "lease_id": 987654,
        "item": {"id": 987654, "external_id": "hostile", "fields": fields},
        "expires_at": "2099-01-01T00:00:00+00:00",
        "reason": "random",
    }
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.route(
        "**/ui/api/projects/tickets/next",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(fake)
        ),
    )
    log_in(page, server, "ana", "/projects/tickets/annotate")
    page.wait_for_selector("#item-fields")
    page.wait_for_function(
        "() => document.getElementById('item-text').textContent.includes('pictures')"
    )
    # The plain path is fetched as an image (it 404s here, so the page then
    # shows it as text); the hostile ones never are.
    page.wait_for_function(
        "() => !document.querySelector('#item-fields img')"
        " && document.getElementById('item-fields').textContent.includes('cat.png')"
    )
    assert any(url.endswith("/projects/tickets/img/cat.png") for url in requested)
    shown = page.inner_text("#item-fields")
    for value in HOSTILE:
        assert value in shown
    assert not any("passwd" in url or "secret" in url for url in requested)
    assert not any("evil.example" in url for url in requested)
