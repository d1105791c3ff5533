"""The reviewer page and the lead dashboard, through the UI with a logged-in session.

A project whose round asks two annotators for every item (overlap_rate=1.0,
overlap_k=2); two annotators disagree through the queue use-cases; the
reviewer settles the item on the review page; the lead reads the dashboard,
starts a round and uploads import files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from labelwise.policy import BatchPolicy
from labelwise.service.api import create_app
from labelwise.service.loop.rounds import run_round
from labelwise.service.queue.service import (
    claim_next,
    flag_lease,
    submit_annotation,
)
from labelwise.service.settings import Settings
from labelwise.service.store import members as members_store
from labelwise.service.store.engine import transaction
from labelwise.service.store.members import create_member
from labelwise.service.store.projects import create_project
from labelwise.service.store.review import dashboard, disputed_items, resolve_item
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Member,
    Project,
    ProjectMember,
    Round,
)

SECRET = "test-secret-key-not-the-placeholder"
PROJECT = "tickets"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
OVERLAP = BatchPolicy(
    components=(),
    random_fraction=1.0,
    overlap_k=2,
    overlap_rate=1.0,
    gold_rate=0.0,
    name="overlap",
)


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(members_store, "_hasher", lambda: cheap)
        yield


class UI:
    """The app, its session factory, passwords, and one logged-in client per member."""

    def __init__(self, app, client: TestClient) -> None:
        self.app = app
        self.client = client
        self.factory = app.state.session_factory
        self.passwords: dict[str, str] = {}
        self.clients: dict[str, TestClient] = {}

    def member(self, name: str, role: str, project: str | None = PROJECT) -> None:
        with transaction(self.factory) as session:
            _, password, _ = create_member(
                session=session, name=name, role=role, project=project
            )
        self.passwords[name] = password

    def login(self, name: str) -> TestClient:
        if name in self.clients:
            return self.clients[name]
        client = TestClient(self.app)
        token = csrf(client.get("/login"))
        response = client.post(
            "/login",
            data={
                "csrf_token": token,
                "username": name,
                "password": self.passwords[name],
                "next": "/",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        self.clients[name] = client
        return client

    def project(self) -> Project:
        with transaction(self.factory) as session:
            found = session.scalar(select(Project).where(Project.name == PROJECT))
            session.expunge(found)
            return found

    def count_items(self) -> int:
        with transaction(self.factory) as session:
            return int(session.scalar(select(func.count()).select_from(Item)) or 0)


def csrf(response) -> str:
    match = CSRF.search(response.text)
    assert match, response.text[:500]
    return match.group(1)


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[UI]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ui.db'}", secret_key=SECRET, dev=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        world = UI(app, client)
        with transaction(world.factory) as session:
            project = create_project(
                session=session, name=PROJECT, labels=["bug", "ask"]
            )
            session.execute(
                insert(Item),
                [
                    {
                        "project_id": project.id,
                        "external_id": f"t-{i}",
                        "role": "pool",
                        "fields": {"text": f"ticket {i}: <b>please</b> help"},
                        "content_hash": hashlib.sha256(f"t{i}".encode()).hexdigest(),
                        "source": {},
                    }
                    for i in range(3)
                ],
            )
            run_round(session=session, project=project, batch_size=3, policy=OVERLAP)
        world.member("lead", "lead")
        world.member("rev", "reviewer")
        world.member("ann1", "annotator")
        world.member("ann2", "annotator")
        world.member("stranger", "lead", project=None)
        yield world
        for other in world.clients.values():
            other.close()


def _now() -> datetime:
    return datetime.now(UTC)


def answer(ui: UI, name: str, label: str, *, spent: int = 1500) -> str:
    """The member claims their next item and submits ``label``; its external id."""
    with transaction(ui.factory) as session:
        project = session.scalar(select(Project).where(Project.name == PROJECT))
        member = session.scalar(select(Member).where(Member.name == name))
        claim = claim_next(
            session=session, project=project, member=member, now=_now(), ttl_seconds=900
        )
        submit_annotation(
            session=session,
            lease_id=claim.lease_id,
            member=member,
            label=label,
            time_spent_ms=spent,
            now=_now(),
        )
        return claim.external_id


def disagree(ui: UI) -> str:
    """ann1 and ann2 answer the same first item differently; its external id."""
    first = answer(ui, "ann1", "bug")
    second = answer(ui, "ann2", "ask")
    assert first == second  # both get the best-ranked item, which wants two answers
    return first


def item_id(ui: UI, external_id: str) -> int:
    with transaction(ui.factory) as session:
        return int(
            session.scalar(select(Item.id).where(Item.external_id == external_id))
        )


# ----------------------------------------------------------------------- review


def test_disagreement_is_listed_and_resolved(ui: UI) -> None:
    external_id = disagree(ui)
    agreed = answer(ui, "ann1", "bug")
    assert answer(ui, "ann2", "bug") == agreed  # agreement: not disputed

    reviewer = ui.login("rev")
    page = reviewer.get(f"/projects/{PROJECT}/review")
    assert page.status_code == 200
    assert f'class="card dispute" data-item="{external_id}"' in page.text
    assert f'data-item="{agreed}"' not in page.text
    block = page.text.split(f'data-item="{external_id}"', 1)[1].split("</article>")[0]
    assert "ann1" in block and "ann2" in block
    assert re.search(r'class="answer-label">bug', block)
    assert re.search(r'class="answer-label">ask', block)
    assert 'class="button resolve-button given" data-label="bug"' in block
    assert 'id="review-note"' in page.text
    # Item text is escaped, never markup.
    assert "&lt;b&gt;please&lt;/b&gt;" in block and "<b>please</b>" not in block

    target = item_id(ui, external_id)
    response = reviewer.post(
        f"/projects/{PROJECT}/review/{target}",
        data={"csrf_token": csrf(page), "label": "ask", "note": "asks for help"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/projects/{PROJECT}/review"
    after = reviewer.get(response.headers["location"])
    assert "resolved as &#39;ask&#39;" in after.text
    assert f'data-item="{external_id}"' not in after.text

    with transaction(ui.factory) as session:
        final = session.get(FinalLabel, target)
        assert final is not None
        assert (final.method, json.loads(final.label)) == ("adjudicated", "ask")
        assert final.confidence is None
        rows = session.execute(
            select(Annotation.source, Annotation.label, Annotation.note)
            .where(Annotation.item_id == target)
            .order_by(Annotation.id)
        ).all()
    assert [(s, json.loads(label)) for s, label, _ in rows] == [
        ("queue", "bug"),
        ("queue", "ask"),
        ("review", "ask"),
    ]
    assert rows[-1][2] == "asks for help"


def test_flagged_item_is_disputed_until_adjudicated(ui: UI) -> None:
    with transaction(ui.factory) as session:
        project = session.scalar(select(Project).where(Project.name == PROJECT))
        member = session.scalar(select(Member).where(Member.name == "ann1"))
        claim = claim_next(
            session=session, project=project, member=member, now=_now(), ttl_seconds=60
        )
        flag_lease(
            session=session,
            lease_id=claim.lease_id,
            member=member,
            flag="ambiguous",
            note="is it <i>both</i>?",
            now=_now(),
        )
    with transaction(ui.factory) as session:
        project = session.scalar(select(Project).where(Project.name == PROJECT))
        disputes, following = disputed_items(session=session, project=project)
    assert following is None
    assert [d.external_id for d in disputes] == [claim.external_id]
    assert disputes[0].reasons == ("flagged",)
    assert disputes[0].answers[0].flag == "ambiguous"
    page = ui.login("rev").get(f"/projects/{PROJECT}/review")
    assert "is it &lt;i&gt;both&lt;/i&gt;?" in page.text


def test_annotators_and_strangers_are_refused(ui: UI) -> None:
    annotator = ui.login("ann1")
    for page in ("review", "dashboard"):
        response = annotator.get(f"/projects/{PROJECT}/{page}")
        assert response.status_code == 403, page
    reviewer = ui.login("rev")
    assert reviewer.get(f"/projects/{PROJECT}/dashboard").status_code == 403
    stranger = ui.login("stranger")
    assert stranger.get(f"/projects/{PROJECT}/review").status_code == 404
    assert stranger.get(f"/projects/{PROJECT}/dashboard").status_code == 404
    token = csrf(stranger.get("/"))
    response = stranger.post(
        f"/projects/{PROJECT}/dashboard/round",
        data={"csrf_token": token, "batch_size": "2", "policy": "random"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    # An annotator cannot resolve either.
    external_id = disagree(ui)
    response = annotator.post(
        f"/projects/{PROJECT}/review/{item_id(ui, external_id)}",
        data={"csrf_token": csrf(annotator.get("/")), "label": "bug"},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_logged_out_pages_redirect_to_login(ui: UI) -> None:
    response = TestClient(ui.app).get(
        f"/projects/{PROJECT}/dashboard", follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_posts_without_csrf_are_refused(ui: UI) -> None:
    external_id = disagree(ui)
    target = item_id(ui, external_id)
    reviewer = ui.login("rev")
    for data in ({"label": "bug"}, {"label": "bug", "csrf_token": "forged"}):
        response = reviewer.post(
            f"/projects/{PROJECT}/review/{target}", data=data, follow_redirects=False
        )
        assert response.status_code == 403
    lead = ui.login("lead")
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/round",
        data={"batch_size": "2", "policy": "random"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    before = ui.count_items()
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/import",
        data={"role": "pool"},
        files={"file": ("new.jsonl", b'{"id": "n-1", "text": "hi"}\n')},
        follow_redirects=False,
    )
    assert response.status_code == 403
    with transaction(ui.factory) as session:
        assert session.get(FinalLabel, target) is None
        assert session.scalar(select(func.count()).select_from(Round)) == 1
    assert ui.count_items() == before


# -------------------------------------------------------------------- dashboard


def test_dashboard_shows_backlog_throughput_and_latest_round(ui: UI) -> None:
    disagree(ui)
    with transaction(ui.factory) as session:
        project = session.scalar(select(Project).where(Project.name == PROJECT))
        member = session.scalar(select(Member).where(Member.name == "ann1"))
        claim_next(
            session=session, project=project, member=member, now=_now(), ttl_seconds=900
        )
        version = session.scalar(select(Round.policy_version))
    page = ui.login("lead").get(f"/projects/{PROJECT}/dashboard")
    assert page.status_code == 200
    backlog = page.text.split('id="backlog"', 1)[1].split("</section>")[0]

    def stat(name: str) -> int:
        found = re.search(rf'data-stat="{name}"><strong>(\d+)</strong>', backlog)
        assert found, name
        return int(found.group(1))

    # 3 items x 2 answers: 2 given, 1 leased, 3 left; 2 entries still open.
    assert stat("open_entries") == 2
    assert stat("remaining") == 3
    assert stat("active_leases") == 1
    assert stat("done_today") == 2
    assert stat("disputed") == 1
    assert "<td>ann1</td>" in backlog  # the active lease and its member
    latest = page.text.split('id="latest-round"', 1)[1].split("</section>")[0]
    assert version in latest
    assert 'data-reason="random"' in latest and "<svg" in latest
    throughput = page.text.split('id="throughput"', 1)[1].split("</section>")[0]
    assert 'data-annotator="ann1"' in throughput
    assert "2400.0" in throughput  # 1 item in 1.5 s: 2400 items/hour
    assert "1.5" in throughput
    agreement = page.text.split('id="agreement"', 1)[1].split("</p>")[0]
    assert "0.0%</strong> of 1 complete overlap items" in agreement


def test_start_round_from_the_dashboard(ui: UI) -> None:
    lead = ui.login("lead")
    token = csrf(lead.get(f"/projects/{PROJECT}/dashboard"))
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/round",
        data={"csrf_token": token, "batch_size": "2", "policy": "random"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = lead.get(response.headers["location"])
    assert "Round 2 queued 2 items" in page.text
    with transaction(ui.factory) as session:
        rounds = session.scalars(select(Round.number).order_by(Round.number)).all()
    assert rounds == [1, 2]
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/round",
        data={"csrf_token": token, "batch_size": "2", "policy": "no-such-policy"},
    )
    assert response.status_code == 200
    assert 'class="flash error"' in response.text and "no-such-policy" in response.text


def test_bad_upload_lists_every_bad_line_and_writes_nothing(ui: UI) -> None:
    lead = ui.login("lead")
    token = csrf(lead.get(f"/projects/{PROJECT}/dashboard"))
    before = ui.count_items()
    content = "\n".join(
        [
            json.dumps({"id": "n-1", "text": "fine"}),
            json.dumps({"id": "n-2", "text": "bad label", "label": "nope"}),
            json.dumps({"id": "n-3", "text": "fine too"}),
            "{not json",
            json.dumps({"id": "t-0", "text": "clashes with an item"}),
        ]
    )
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/import",
        data={"csrf_token": token, "role": "pool"},
        files={"file": ("batch.jsonl", content.encode())},
    )
    assert response.status_code == 422
    errors = response.text.split('id="import-errors"', 1)[1].split("</div>")[0]
    lines = re.findall(r"<li>(.*?)</li>", errors)
    assert [line.split(":")[1] for line in lines] == ["2", "4", "5"], lines
    assert all(line.startswith("batch.jsonl:") for line in lines)
    assert "tmp" not in errors and "labelwise-upload" not in errors
    assert ui.count_items() == before


def test_good_upload_adds_the_items(ui: UI) -> None:
    lead = ui.login("lead")
    token = csrf(lead.get(f"/projects/{PROJECT}/dashboard"))
    before = ui.count_items()
    content = "\n".join(
        json.dumps({"id": f"n-{i}", "text": f"new ticket {i}"}) for i in range(4)
    )
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/import",
        data={"csrf_token": token, "role": "pool"},
        files={"file": ("more.jsonl", content.encode())},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = lead.get(response.headers["location"])
    assert "Imported 4 pool items from &#39;more.jsonl&#39;" in page.text
    assert ui.count_items() == before + 4


# ------------------------------------------------- the store queries, both backends


def test_disputes_and_dashboard_queries(session_factory) -> None:
    """Disagreement, flag and failed gold are disputes, agreement is not; SQL only."""
    with transaction(session_factory) as session:
        project = create_project(session=session, name=PROJECT, labels=["bug", "ask"])
        session.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": external_id,
                    "role": role,
                    "fields": {"text": external_id},
                    "content_hash": hashlib.sha256(external_id.encode()).hexdigest(),
                    "source": {},
                    "gold_label": '"bug"' if role == "gold" else None,
                }
                for external_id, role in [
                    ("p-0", "pool"),
                    ("p-1", "pool"),
                    ("p-2", "pool"),
                    ("g-0", "gold"),
                ]
            ],
        )
        run_round(session=session, project=project, batch_size=3, policy=OVERLAP)
        a1, _, _ = create_member(session=session, name="a1", role="annotator")
        a2, _, _ = create_member(session=session, name="a2", role="annotator")
        create_member(session=session, name="boss", role="lead")
        ids = dict(session.execute(select(Item.external_id, Item.id)).all())
        session.add_all(
            [
                Annotation(
                    project_id=project.id,
                    item_id=ids["g-0"],
                    member_id=a1.id,
                    label='"ask"',
                    source="queue",
                    provenance={"gold_correct": False},
                ),
                Annotation(
                    project_id=project.id,
                    item_id=ids["g-0"],
                    member_id=a2.id,
                    label='"bug"',
                    source="queue",
                    provenance={"gold_correct": True},
                ),
            ]
        )
        for member in (a1, a2):
            session.execute(
                insert(ProjectMember).values(project_id=project.id, member_id=member.id)
            )

    def act(member: str, label: str | None) -> str:
        with transaction(session_factory) as session:
            project = session.scalar(select(Project))
            who = session.scalar(select(Member).where(Member.name == member))
            claim = claim_next(
                session=session, project=project, member=who, now=_now(), ttl_seconds=60
            )
            if label is None:
                flag_lease(
                    session=session,
                    lease_id=claim.lease_id,
                    member=who,
                    flag="other",
                    now=_now(),
                )
            else:
                submit_annotation(
                    session=session,
                    lease_id=claim.lease_id,
                    member=who,
                    label=label,
                    time_spent_ms=2000,
                    now=_now(),
                )
            return claim.external_id

    disputed = act("a1", "bug")
    assert act("a2", "ask") == disputed
    agreed = act("a1", "bug")
    assert act("a2", "bug") == agreed
    flagged = act("a1", None)

    with transaction(session_factory) as session:
        project = session.scalar(select(Project))
        disputes, following = disputed_items(session=session, project=project)
        assert following is None
        reasons = {d.external_id: d.reasons for d in disputes}
        assert reasons == {
            disputed: ("disagreement",),
            flagged: ("flagged",),
            "g-0": ("disagreement", "gold_failed"),
        }
        page, following = disputed_items(session=session, project=project, limit=1)
        assert len(page) == 1 and following == page[0].item_id
        rest, _ = disputed_items(
            session=session, project=project, limit=5, cursor=following
        )
        assert [d.item_id for d in page + rest] == [d.item_id for d in disputes]
        data = dashboard(session=session, project=project, now=_now())
        assert data["agreement"] == {"complete": 2, "agreed": 1, "share": 0.5}
        assert data["disputed"] == 3
        assert data["latest_round"]["policy_version"] == OVERLAP.version
        assert [row["annotator"] for row in data["throughput"]] == ["a1", "a2"]
        assert data["throughput"][0]["today"]["median_seconds"] == 2.0
        assert {row["annotator"] for row in data["caps"]["members"]} == {"a1", "a2"}
        boss = session.scalar(select(Member).where(Member.name == "boss"))
        final = resolve_item(
            session=session,
            project=project,
            item_id=ids["g-0"],
            label="bug",
            reviewer=boss,
            note="gold says bug",
        )
        assert (final.method, final.n_annotations) == ("adjudicated", 2)
    with transaction(session_factory) as session:
        project = session.scalar(select(Project))
        left, _ = disputed_items(session=session, project=project)
        assert {d.external_id for d in left} == {disputed, flagged}


def test_multi_label_resolution_posts_json_lists(ui: UI) -> None:
    with transaction(ui.factory) as session:
        project = create_project(
            session=session, name="tags", labels=["a", "b", "c"], multi_label=True
        )
        item = Item(
            project_id=project.id,
            external_id="m-0",
            role="pool",
            fields={"text": "tag me"},
            content_hash="m0",
            source={},
        )
        session.add(item)
        session.flush()
        target = item.id
        _, password, _ = create_member(
            session=session, name="tagger", role="reviewer", project=project
        )
    ui.passwords["tagger"] = password
    reviewer = ui.login("tagger")
    token = csrf(reviewer.get("/projects/tags/review"))
    response = reviewer.post(
        f"/projects/tags/review/{target}",
        data={"csrf_token": token, "label": ["a"]},
        follow_redirects=False,
    )
    assert response.status_code in (400, 422)
    response = reviewer.post(
        f"/projects/tags/review/{target}",
        data={"csrf_token": token, "label": ['["b", "a"]', '["c"]']},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with transaction(ui.factory) as session:
        final = session.get(FinalLabel, target)
        assert final is not None
        assert json.loads(final.label) == ["a", "b", "c"]
        assert final.method == "adjudicated"
