"""Security at the edge: headers, CSRF on every cookie post, login limit, size limits.

TestClient over ``create_app`` on SQLite and PostgreSQL. The world: project
``tickets`` (12 queued items) with an annotator, a reviewer and a lead, all
with passwords for the UI.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from labelwise.service.api import create_app
from labelwise.service.api.security import CONTENT_SECURITY_POLICY, LoginLimiter
from labelwise.service.loop.rounds import run_round
from labelwise.service.settings import Settings
from labelwise.service.store import members as members_store
from labelwise.service.store.engine import transaction
from labelwise.service.store.members import create_member
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import Annotation, Item, Lease, Member
from labelwise.service.ui.app import UI_ROUTERS
from labelwise.service.ui.templating import TEMPLATE_DIR

SECRET = "security-test-secret-not-the-placeholder"
API = "/api/v1"
LIMIT = 4096


@pytest.fixture(autouse=True)
def _collect_earlier_garbage() -> Iterator[None]:
    """Collect what earlier tests left for the GC before each of these runs.

    A database connection an earlier test dropped unclosed would otherwise be
    collected in the middle of one of these tests, and its ResourceWarning
    (an error under filterwarnings) would fail a security check it has
    nothing to do with.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    yield


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(members_store, "_hasher", lambda: cheap)
        yield


@pytest.fixture
def app(store_url):
    settings = Settings(
        database_url=store_url,
        secret_key=SECRET,
        max_body_bytes=LIMIT,
        max_upload_bytes=2 * LIMIT,
        train_worker=False,
    )
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(app, client) -> dict[str, tuple[str, str]]:
    """Project tickets with a queued round; name -> (password, token)."""
    factory = app.state.session_factory
    people = {}
    with transaction(factory) as session:
        project = create_project(
            session=session, name="tickets", labels=["bug", "ask"], text_field="text"
        )
        session.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": f"t-{i}",
                    "role": "pool",
                    "fields": {"text": f"ticket {i}: my card is late"},
                    "content_hash": hashlib.sha256(b"%d" % i).hexdigest(),
                    "source": {},
                }
                for i in range(12)
            ],
        )
        run_round(session=session, project=project, batch_size=12, seed=1)
        for name, role in (("ana", "annotator"), ("rita", "reviewer"), ("lee", "lead")):
            _, password, token = create_member(
                session=session, name=name, role=role, project=project
            )
            people[name] = (password, token)
    return people


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, html[:300]
    return match.group(1)


def login(client: TestClient, name: str, password: str) -> str:
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def counts(app) -> tuple[int, int, int]:
    """(annotations, non-active leases, items): what a refused post must not change."""
    with transaction(app.state.session_factory) as session:
        return (
            session.scalar(select(func.count(Annotation.id))) or 0,
            session.scalar(select(func.count(Lease.id)).where(Lease.status != "active"))
            or 0,
            session.scalar(select(func.count(Item.id))) or 0,
        )


# ----------------------------------------------------------------- headers


def test_ui_pages_and_api_answers_carry_the_security_headers(client, world):
    login(client, "lee", world["lee"][0])
    for path in (
        "/login",
        "/",
        "/projects/tickets/annotate",
        "/projects/tickets/dashboard",
        "/static/app.css",
        f"{API}/health",
        f"{API}/nowhere",
    ):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        policy = response.headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY
        script_src = re.search(r"script-src ([^;]+)", policy)
        assert script_src and script_src.group(1).strip() == "'self'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy


def test_templates_have_no_inline_script_or_handlers():
    for template in Path(TEMPLATE_DIR).glob("*.html"):
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
            assert "src=" in tag, f"{template.name}: inline <script>: {tag}"
        assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), template.name
        assert "javascript:" not in html.lower(), template.name


def test_echoed_input_is_escaped(client, world):
    token = csrf_of(client.get("/login").text)
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    response = client.post(
        "/login",
        data={"username": evil, "password": "wrong", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "<script>alert(1)" not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


# -------------------------------------------------------------------- CSRF


def _cookie_posts() -> list[str]:
    """Every POST route of the UI modules (the cookie-authenticated ones)."""
    paths = []
    for name in UI_ROUTERS:
        module = importlib.import_module(f"labelwise.service.ui.{name}")
        paths += [
            route.path
            for route in module.router.routes
            if isinstance(route, APIRoute) and "POST" in route.methods
        ]
    return sorted(paths)


def test_every_cookie_authenticated_post_needs_the_csrf_token(client, app, world):
    posts = _cookie_posts()
    assert "/login" in posts and "/ui/api/leases/{lease_id}/annotation" in posts
    assert "/projects/{project}/dashboard/import" in posts
    csrf = login(client, "lee", world["lee"][0])
    lease = client.post(
        "/ui/api/projects/tickets/next", json={}, headers={"X-CSRF-Token": csrf}
    ).json()
    assert lease["lease_id"], lease
    values = {"project": "tickets", "lease_id": lease["lease_id"], "item_id": 1}
    before = counts(app)
    for path in posts:
        url = re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), 1)), path)
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            if path.startswith("/ui/api/"):
                response = client.post(url, json={"label": "bug"}, headers=headers)
            else:
                form = {"label": "bug", "username": "lee", "csrf_token": "forged"}
                if not headers:
                    form.pop("csrf_token")
                response = client.post(url, data=form, follow_redirects=False)
            assert response.status_code == 403, (path, response.text[:300])
            if path.startswith("/ui/api/"):
                assert response.json()["error"]["code"] == "csrf_rejected"
            else:
                assert "CSRF" in response.text
    assert counts(app) == before
    # Still logged in: the refused posts logged nobody out.
    assert client.get("/", follow_redirects=False).status_code == 200


def test_the_session_cookie_never_authenticates_the_api(client, world):
    login(client, "lee", world["lee"][0])
    response = client.get(f"{API}/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# ------------------------------------------------------------ login limiter


def test_failed_logins_are_limited_per_name_and_address(client, world, caplog):
    caplog.set_level(logging.DEBUG)
    password = world["ana"][0]
    token = csrf_of(client.get("/login").text)

    def attempt(name: str, secret: str):
        return client.post(
            "/login",
            data={"username": name, "password": secret, "csrf_token": token},
            follow_redirects=False,
        )

    for n in range(5):
        assert attempt("ana", f"wrong-{n}").status_code == 401
    refused = attempt("ana", password)  # the right password, but too late
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed logins" in refused.text
    assert client.get("/", follow_redirects=False).status_code == 303  # not in
    # Another member from the same address is not locked out by ana's failures.
    assert attempt("lee", world["lee"][0]).status_code == 303
    assert password not in caplog.text and "wrong-1" not in caplog.text


def test_login_limiter_window_and_reset():
    now = [1000.0]
    limiter = LoginLimiter(
        per_name=3, per_address=5, window_seconds=60, clock=lambda: now[0]
    )
    for _ in range(3):
        assert limiter.retry_after("ana", "10.0.0.1") == 0
        limiter.failed("ana", "10.0.0.1")
    assert limiter.retry_after("ANA", "10.0.0.1") == 60  # names are case-blind
    assert limiter.retry_after("ana", "10.0.0.2") == 0  # per address
    now[0] += 30
    assert limiter.retry_after("ana", "10.0.0.1") == 30
    now[0] += 31
    assert limiter.retry_after("ana", "10.0.0.1") == 0
    for name in ("bob", "cat", "dan", "eve", "fay"):
        limiter.failed(name, "10.0.0.9")
    assert limiter.retry_after("gil", "10.0.0.9") == 60  # the address's own limit
    limiter.failed("ana", "10.0.0.1")
    limiter.succeeded("ana", "10.0.0.1")
    assert limiter.retry_after("ana", "10.0.0.1") == 0


# -------------------------------------------------------------- size limits


def test_oversized_submit_is_refused_and_nothing_is_saved(client, app, world):
    headers = {"Authorization": f"Bearer {world['ana'][1]}"}
    lease = client.post(f"{API}/projects/tickets/next", headers=headers).json()
    path = f"{API}/leases/{lease['lease_id']}/annotation"
    body = '{"label": "bug", "idempotency_key": "' + "k" * (2 * LIMIT) + '"}'
    declared = client.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )

    def chunks():
        for _ in range(4):
            yield b" " * LIMIT

    streamed = client.post(
        path, content=chunks(), headers={**headers, "content-type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert str(LIMIT) in error["message"] and "MAX_BODY_BYTES" in error["hint"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert counts(app)[0] == 0
    ok = client.post(path, json={"label": "bug"}, headers=headers)
    assert ok.status_code == 201  # the lease is untouched and still answerable


def test_oversized_import_upload_is_refused_and_nothing_is_imported(client, app, world):
    csrf = login(client, "lee", world["lee"][0])
    before = counts(app)
    rows = "".join(
        f'{{"id": "big-{i}", "text": "{"x" * 60}"}}\n' for i in range(3 * LIMIT // 80)
    )
    response = client.post(
        "/projects/tickets/dashboard/import",
        data={"csrf_token": csrf, "role": "pool"},
        files={"file": ("big.jsonl", rows.encode(), "application/x-ndjson")},
        follow_redirects=False,
    )
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "MAX_UPLOAD_BYTES" in response.json()["error"]["hint"]
    assert counts(app) == before
    # A small upload under the same limit goes through.
    small = '{"id": "small-1", "text": "hello"}\n'
    response = client.post(
        "/projects/tickets/dashboard/import",
        data={"csrf_token": csrf, "role": "pool"},
        files={"file": ("small.jsonl", small.encode(), "application/x-ndjson")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    assert counts(app)[2] == before[2] + 1


# ------------------------------------------------------- paths and SQL text


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../pyproject.toml",
        "/static/..%2f..%2fsettings.py",
        "/static/%2e%2e/%2e%2e/app.py",
        "/static/..\\..\\app.py",
        "/static//etc/passwd",
    ],
)
def test_static_files_refuse_path_traversal(client, world, path):
    response = client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert "[project]" not in response.text and "def " not in response.text


def test_hostile_names_are_data_not_sql(client, app, world):
    token = world["lee"][1]
    headers = {"Authorization": f"Bearer {token}"}
    for name in ("x'; DROP TABLE members; --", 'x" OR "1"="1', "x%' OR 1=1 --"):
        response = client.get(f"{API}/projects/{name}", headers=headers)
        assert response.status_code == 404
        response = client.get(f"{API}/projects/tickets/items/{name}", headers=headers)
        assert response.status_code == 404
    with transaction(app.state.session_factory) as session:
        assert session.scalar(select(func.count(Member.id))) == 3


def _sql_calls(tree):
    """Calls whose first argument is SQL text: text(), exec_driver_sql(), execute()."""
    import ast

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func_name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if func_name in ("text", "exec_driver_sql", "execute", "executescript"):
            yield node, func_name


def test_sql_text_is_only_ever_a_constant():
    """Values reach SQL only as bound parameters: no f-string, %, + or .format SQL."""
    import ast

    root = Path(__file__).resolve().parents[3] / "labelwise"
    offenders = []
    for source in root.rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node, name in _sql_calls(tree):
            first = node.args[0]
            built = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call)
                and getattr(first.func, "attr", None) == "format"
            )
            if built:
                offenders.append(f"{source.relative_to(root)}:{node.lineno} {name}()")
    assert offenders == []


def test_ui_pages_of_another_project_read_as_missing(client, app, world):
    with transaction(app.state.session_factory) as session:
        create_project(session=session, name="secret-project", labels=["a", "b"])
    csrf = login(client, "lee", world["lee"][0])
    for path in (
        "/projects/secret-project/annotate",
        "/projects/secret-project/dashboard",
        "/projects/secret-project/review",
    ):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
    response = client.post(
        "/ui/api/projects/secret-project/next", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "secret-project" not in client.get("/").text


def test_streamed_upload_over_the_limit_is_refused_mid_stream(client, app, world):
    csrf = login(client, "lee", world["lee"][0])
    before = counts(app)
    boundary = "fuzzboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f'{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="big.jsonl"\r\nContent-Type: application/x-ndjson\r\n\r\n'
    ).encode()

    def body():  # no Content-Length: the limit must catch the stream itself
        yield head
        for i in range(8):
            yield b'{"id": "s%d", "text": "%s"}\n' % (i, b"x" * LIMIT)

    response = client.post(
        "/projects/tickets/dashboard/import",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        follow_redirects=False,
    )
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"]["code"] == "payload_too_large"
    assert counts(app) == before


def test_login_limiter_forgets_idle_keys():
    now = [0.0]
    limiter = LoginLimiter(window_seconds=10, clock=lambda: now[0])
    for i in range(10_001):
        limiter.failed(f"user{i}", "10.0.0.1")
    now[0] += 11
    limiter.failed("late", "10.0.0.2")
    assert len(limiter._failures) <= 3  # the idle pairs are gone
