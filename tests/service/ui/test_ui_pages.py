"""The web UI without a browser: login, CSRF, projects, the annotate JSON endpoints.

TestClient against ``create_app(settings)`` on a temporary SQLite database.
The annotate page's JSON endpoints must change the database exactly as the
REST API's queue and lease routes do: the test runs the same steps through
both and compares the rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from labelwise.cli import app as cli_app
from labelwise.service.api import create_app
from labelwise.service.loop.rounds import run_round
from labelwise.service.queue.service import queue_status
from labelwise.service.settings import Settings
from labelwise.service.store import members as members_store
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.members import create_member
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Lease,
    Member,
    Project,
    ProjectMember,
    QueueEntry,
    Round,
)

SECRET = "ui-test-secret-not-the-placeholder"
EVIL = "<script>alert(1)</script>"
EVIL_IMG = '<img src=x onerror="alert(2)">'
API = "/api/v1"


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(members_store, "_hasher", lambda: cheap)
        yield


@pytest.fixture
def app(tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ui.db'}", secret_key=SECRET, dev=False
    )
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def factory(app, client):
    return app.state.session_factory


def make_project(factory, name, n_items=12, *, texts=None, guideline=None):
    """A text project with ``n_items`` pool items and a first (cold) round queued."""
    texts = texts or [f"message {i} of {name}: my card is late" for i in range(n_items)]
    with transaction(factory) as session:
        project = create_project(
            session=session,
            name=name,
            labels=["bug", "ask", "other"],
            guideline=guideline,
        )
        session.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": f"{name}-{i}",
                    "role": "pool",
                    "fields": {"text": text},
                    "content_hash": hashlib.sha256(f"{name}{i}".encode()).hexdigest(),
                    "source": {},
                }
                for i, text in enumerate(texts)
            ],
        )
        run_round(session=session, project=project, batch_size=len(texts), seed=1)


def make_member(factory, name, role="annotator", project=None):
    with transaction(factory) as session:
        target = None
        if project is not None:
            target = session.scalar(select(Project).where(Project.name == project))
        _, password, token = create_member(
            session=session, name=name, role=role, project=target
        )
    return password, token


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, html[:500]
    return match.group(1)


def login(client, name, password) -> str:
    """Log in through the form; the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def post_json(client, path, csrf, body=None):
    return client.post(
        path, json={} if body is None else body, headers={"X-CSRF-Token": csrf}
    )


# --------------------------------------------------------------------- login


def test_pages_redirect_to_login(client, factory):
    make_project(factory, "p")
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    response = client.get("/projects/p/annotate", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fprojects%2Fp%2Fannotate"
    response = client.get("/ui/api/projects/p/queue")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_login_sets_a_signed_httponly_cookie_and_logout_ends_it(client, factory):
    make_project(factory, "p")
    password, _ = make_member(factory, "ana", project="p")
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "username": "ana",
            "password": password,
            "csrf_token": token,
            "next": "/projects/p/annotate",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/projects/p/annotate"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert password not in response.headers["set-cookie"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="nav-user"' in page.text
    csrf = csrf_of(page.text)
    assert csrf != token  # a fresh token after login
    response = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_redirect_never_leaves_the_site(client, factory):
    password, _ = make_member(factory, "ana")
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "username": "ana",
            "password": password,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_wrong_password_shows_an_error(client, factory):
    make_member(factory, "ana")
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"username": "ana", "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert 'id="login-error"' in response.text
    assert "wrong password" in response.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_form_posts_without_the_csrf_token_are_refused(client, factory):
    make_project(factory, "p")
    password, _ = make_member(factory, "ana", project="p")
    client.get("/login")
    response = client.post("/login", data={"username": "ana", "password": password})
    assert response.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303  # not logged in
    response = client.post(
        "/login",
        data={"username": "ana", "password": password, "csrf_token": "forged"},
    )
    assert response.status_code == 403
    csrf = login(client, "ana", password)
    response = client.post("/logout", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still in
    # The JSON posts of the page need the header; nothing changes without it.
    for path in ("/ui/api/projects/p/next", "/ui/api/projects/p/undo"):
        response = client.post(path, json={})
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "csrf_rejected"
        response = client.post(path, json={}, headers={"X-CSRF-Token": csrf + "x"})
        assert response.status_code == 403, path
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Lease)) == 0


def test_annotators_see_only_their_projects(client, factory):
    make_project(factory, "mine")
    make_project(factory, "theirs")
    password, _ = make_member(factory, "ana", project="mine")
    csrf = login(client, "ana", password)
    page = client.get("/").text
    assert 'data-project="mine"' in page
    assert "theirs" not in page
    assert client.get("/projects/mine/annotate").status_code == 200
    response = client.get("/projects/theirs/annotate")
    assert response.status_code == 404
    assert "Your projects: mine." in response.text
    response = post_json(client, "/ui/api/projects/theirs/next", csrf)
    assert response.status_code == 404
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Lease)) == 0


def test_annotate_page_has_the_labels_keys_and_hooks(client, factory):
    make_project(factory, "p", guideline="Pick bug for errors.")
    password, _ = make_member(factory, "ana", project="p")
    login(client, "ana", password)
    html = client.get("/projects/p/annotate").text
    for hook in ('id="item-text"', 'id="progress"', 'id="flash"', 'id="shortcuts"'):
        assert hook in html
    assert 'id="guideline"' in html and "Pick bug for errors." in html
    keys = re.findall(r'class="label-button" data-label="([^"]+)" data-key="(.)"', html)
    assert keys == [("bug", "1"), ("ask", "2"), ("other", "3")]
    assert "/static/annotate.js" in html
    script = client.get("/static/annotate.js")
    assert script.status_code == 200
    assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
    assert client.get("/static/app.css").status_code == 200


# ------------------------------------------------------- the JSON endpoints


def _rows(factory, name):
    """The member's leases and answers in order (no ids, times or random reasons)."""
    with transaction(factory) as session:
        member = session.scalar(select(Member).where(Member.name == name))
        leases = session.execute(
            select(Lease.status, Lease.flag, Lease.note)
            .where(Lease.member_id == member.id)
            .order_by(Lease.id)
        ).all()
        answers = session.execute(
            select(
                Annotation.label,
                Annotation.source,
                Annotation.time_spent_ms,
                Annotation.idempotency_key.is_not(None),
            )
            .where(Annotation.member_id == member.id)
            .order_by(Annotation.id)
        ).all()
        done = session.scalar(
            select(func.coalesce(func.sum(QueueEntry.done), 0))
            .join(Annotation, Annotation.item_id == QueueEntry.item_id)
            .where(Annotation.member_id == member.id)
        )
        finals = session.scalar(
            select(func.count())
            .select_from(FinalLabel)
            .join(Annotation, Annotation.item_id == FinalLabel.item_id)
            .where(Annotation.member_id == member.id)
        )
    return [tuple(r) for r in leases], [tuple(r) for r in answers], done, finals


def test_json_endpoints_change_the_database_like_the_api(client, factory):
    make_project(factory, "p", n_items=20)
    password, _ = make_member(factory, "ana", project="p")
    _, token = make_member(factory, "bob", project="p")
    auth = {"Authorization": f"Bearer {token}"}
    csrf = login(client, "ana", password)

    # ana through the UI's endpoints: claim + prefetch, submit, skip, flag, undo.
    first = post_json(client, "/ui/api/projects/p/next", csrf).json()
    assert first["lease_id"] and first["item"]["fields"]["text"]
    second = post_json(
        client, "/ui/api/projects/p/next", csrf, {"have": [first["lease_id"]]}
    ).json()
    assert second["lease_id"] not in (None, first["lease_id"])
    # A reload (the page lost its leases) gets the held ones back, oldest first.
    again = post_json(client, "/ui/api/projects/p/next", csrf).json()
    assert again["lease_id"] == first["lease_id"]
    full = post_json(
        client,
        "/ui/api/projects/p/next",
        csrf,
        {"have": [first["lease_id"], second["lease_id"]]},
    ).json()
    assert full == {"lease_id": None, "empty": "holding"}

    body = {"label": "bug", "time_spent_ms": 1200, "idempotency_key": "k-ana-1"}
    saved = post_json(
        client, f"/ui/api/leases/{first['lease_id']}/annotation", csrf, body
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["label"] == "bug" and saved.json()["created"] is True
    replay = post_json(
        client, f"/ui/api/leases/{first['lease_id']}/annotation", csrf, body
    )
    assert replay.status_code == 200 and replay.json()["id"] == saved.json()["id"]
    skipped = post_json(client, f"/ui/api/leases/{second['lease_id']}/skip", csrf)
    assert skipped.json()["status"] == "skipped"
    third = post_json(client, "/ui/api/projects/p/next", csrf).json()
    flagged = post_json(
        client,
        f"/ui/api/leases/{third['lease_id']}/flag",
        csrf,
        {"flag": "ambiguous", "note": "two intents"},
    )
    assert flagged.json()["status"] == "flagged"
    fourth = post_json(client, "/ui/api/projects/p/next", csrf).json()
    post_json(
        client,
        f"/ui/api/leases/{fourth['lease_id']}/annotation",
        csrf,
        {"label": "ask", "time_spent_ms": 800, "idempotency_key": "k-ana-2"},
    )
    undone = post_json(client, "/ui/api/projects/p/undo", csrf)
    assert undone.status_code == 200, undone.text
    assert undone.json()["lease_id"] == fourth["lease_id"]
    assert undone.json()["label"] == "ask"
    assert undone.json()["item"] == fourth["item"]
    nothing = post_json(client, "/ui/api/projects/p/undo", csrf)
    assert nothing.status_code == 200  # the first answer's lease still runs

    # bob does the same through the REST API.
    b1 = client.post(f"{API}/projects/p/next", headers=auth).json()
    b2 = client.post(f"{API}/projects/p/next", headers=auth).json()
    client.post(
        f"{API}/leases/{b1['lease_id']}/annotation",
        headers=auth,
        json={"label": "bug", "time_spent_ms": 1200, "idempotency_key": "k-bob-1"},
    )
    client.post(f"{API}/leases/{b2['lease_id']}/skip", headers=auth)
    b3 = client.post(f"{API}/projects/p/next", headers=auth).json()
    client.post(
        f"{API}/leases/{b3['lease_id']}/flag",
        headers=auth,
        json={"flag": "ambiguous", "note": "two intents"},
    )
    b4 = client.post(f"{API}/projects/p/next", headers=auth).json()
    client.post(
        f"{API}/leases/{b4['lease_id']}/annotation",
        headers=auth,
        json={"label": "ask", "time_spent_ms": 800, "idempotency_key": "k-bob-2"},
    )
    client.post(f"{API}/projects/p/undo", headers=auth)
    client.post(f"{API}/projects/p/undo", headers=auth)

    assert _rows(factory, "ana") == _rows(factory, "bob")
    leases, answers, _, _ = _rows(factory, "ana")
    assert [status for status, *_ in leases] == [
        "active",
        "skipped",
        "flagged",
        "active",
    ]
    assert leases[2][1:3] == ("ambiguous", "two intents")
    assert answers == []  # both answers were taken back

    # The progress line is queue_status for the member.
    shown = client.get("/ui/api/projects/p/queue").json()
    with transaction(factory) as session:
        project = session.scalar(select(Project).where(Project.name == "p"))
        member = session.scalar(select(Member).where(Member.name == "ana"))
        expected = queue_status(
            session=session, project=project, member=member, now=datetime.now(UTC)
        )
    assert shown["remaining"] == expected["remaining"]
    assert shown["member"]["done_today"] == expected["member"]["done_today"]


def test_json_errors_use_the_api_error_shape(client, factory):
    make_project(factory, "p")
    password, _ = make_member(factory, "ana", project="p")
    _, token = make_member(factory, "bob", project="p")
    csrf = login(client, "ana", password)
    bob = client.post(
        f"{API}/projects/p/next", headers={"Authorization": f"Bearer {token}"}
    ).json()
    # Someone else's lease: 403, nothing changed.
    response = post_json(client, f"/ui/api/leases/{bob['lease_id']}/skip", csrf)
    assert response.status_code == 403
    assert set(response.json()["error"]) == {"code", "message", "hint", "details"}
    claim = post_json(client, "/ui/api/projects/p/next", csrf).json()
    response = post_json(
        client,
        f"/ui/api/leases/{claim['lease_id']}/annotation",
        csrf,
        {"label": "nope"},
    )
    assert response.status_code == 400
    response = post_json(
        client, f"/ui/api/leases/{claim['lease_id']}/flag", csrf, {"flag": "weird"}
    )
    assert response.status_code == 400
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0
        statuses = session.scalars(select(Lease.status)).all()
    assert sorted(statuses) == ["active", "active"]


def test_gold_feedback_names_the_reference_answer(client, factory):
    make_project(factory, "p")
    password, _ = make_member(factory, "ana", project="p")
    csrf = login(client, "ana", password)
    with transaction(factory) as session:
        project = session.scalar(select(Project).where(Project.name == "p"))
        project.settings = {"gold_feedback": True}
        session.execute(
            QueueEntry.__table__.update()
            .where(QueueEntry.project_id == project.id)
            .values(status="superseded")
        )
        item = Item(
            project_id=project.id,
            external_id="g-1",
            role="gold",
            fields={"text": "a gold message"},
            content_hash="gold-1",
            source={},
            gold_label='"ask"',
        )
        session.add(item)
        session.flush()
        member = session.scalar(select(Member).where(Member.name == "ana"))
        session.add(
            Lease(
                project_id=project.id,
                item_id=item.id,
                member_id=member.id,
                reason="gold",
                status="active",
                created_at=datetime.now(UTC),
                expires_at=datetime(2999, 1, 1, tzinfo=UTC),
            )
        )
    claim = post_json(client, "/ui/api/projects/p/next", csrf).json()
    assert claim["item"]["external_id"] == "g-1"
    saved = post_json(
        client,
        f"/ui/api/leases/{claim['lease_id']}/annotation",
        csrf,
        {"label": "bug", "idempotency_key": "gold-k"},
    ).json()
    assert saved["gold"] == {"correct": False, "reference": "ask"}


# -------------------------------------------------------------- escaping


def test_item_and_guideline_markup_is_escaped_everywhere(client, factory):
    make_project(factory, "p", texts=[EVIL, EVIL_IMG, "plain"], guideline=EVIL)
    password, _ = make_member(factory, "ana", project="p")
    csrf = login(client, "ana", password)
    pages = [client.get("/"), client.get("/projects/p/annotate"), client.get("/login")]
    claims = [post_json(client, "/ui/api/projects/p/next", csrf)]
    claims.append(
        post_json(
            client,
            "/ui/api/projects/p/next",
            csrf,
            {"have": [claims[0].json()["lease_id"]]},
        )
    )
    for page in pages:
        assert page.headers["content-type"].startswith("text/html")
        assert EVIL not in page.text and EVIL_IMG not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1].text  # the guideline
    texts = set()
    for response in claims:
        assert response.headers["content-type"].startswith("application/json")
        texts.add(response.json()["item"]["fields"]["text"])
    assert texts & {EVIL, EVIL_IMG}  # data, for textContent only


# ------------------------------------------------------------------ demo


def test_demo_command_sets_up_a_project_members_and_a_round(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli_app, ["demo", "--no-serve", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8000/" in result.output
    passwords = dict(re.findall(r"^\s+(\w+)\s+\(\w+\): (\S+)$", result.output, re.M))
    assert set(passwords) == {"lead", "ann1", "ann2"}
    engine = make_engine(f"sqlite:///{folder / 'labelwise.db'}")
    try:
        with transaction(make_sessionmaker(engine)) as session:
            project = session.scalar(select(Project).where(Project.name == "support"))
            assert project is not None
            roles = dict(
                session.execute(
                    select(Member.name, Member.role)
                    .join(ProjectMember, ProjectMember.member_id == Member.id)
                    .where(ProjectMember.project_id == project.id)
                ).all()
            )
            assert roles == {"lead": "lead", "ann1": "annotator", "ann2": "annotator"}
            by_role = dict(
                session.execute(
                    select(Item.role, func.count())
                    .where(Item.project_id == project.id)
                    .group_by(Item.role)
                ).all()
            )
            assert by_role["pool"] > 500 and by_role["validation"] > 100
            seeds = session.scalar(
                select(func.count())
                .select_from(FinalLabel)
                .join(Item, Item.id == FinalLabel.item_id)
                .where(Item.role == "pool")
            )
            assert seeds == 30
            assert session.scalar(select(func.count()).select_from(Round)) == 1
            queued = session.scalar(select(func.count()).select_from(QueueEntry))
            assert queued == 100
    finally:
        engine.dispose()
    # The printed passwords log in.
    settings = Settings(
        database_url=f"sqlite:///{folder / 'labelwise.db'}", secret_key=SECRET
    )
    with TestClient(create_app(settings)) as client:
        csrf = login(client, "ann1", passwords["ann1"])
        claim = post_json(client, "/ui/api/projects/support/next", csrf).json()
        assert claim["lease_id"]
    again = CliRunner().invoke(cli_app, ["demo", "--no-serve", "--dir", str(folder)])
    assert again.exit_code != 0


def test_renew_keeps_the_lease(client, factory):
    make_project(factory, "p")
    password, _ = make_member(factory, "ana", project="p")
    csrf = login(client, "ana", password)
    claim = post_json(client, "/ui/api/projects/p/next", csrf).json()
    response = post_json(client, f"/ui/api/leases/{claim['lease_id']}/renew", csrf)
    assert response.status_code == 200, response.text
    renewed = datetime.fromisoformat(response.json()["expires_at"])
    assert renewed >= datetime.fromisoformat(claim["expires_at"])
    assert client.post(f"/ui/api/leases/{claim['lease_id']}/renew").status_code == 403
