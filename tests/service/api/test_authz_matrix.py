"""Who may call what: every endpoint × every kind of caller → one expected status.

The world (one per backend, built once for the module): project ``alpha`` with
an annotator, a reviewer and a lead; an admin who belongs to no project; and
``other``, the lead of project ``beta`` only. ``other`` must see nothing of
``alpha``: every ``alpha`` endpoint answers 404 exactly as for a project that
does not exist. Each case builds what it needs (a lease, an answer to undo)
and uses names of its own, so the cases do not depend on their order.
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from apitools import (
    API,
    World,
    assert_canonical_error,
    claim,
    make_settings,
    submit,
    truncate_postgres,
)
from fastapi.testclient import TestClient

from labelwise.service.api import create_app
from labelwise.service.store.engine import transaction
from labelwise.service.store.members import get_visible_project
from labelwise.service.store.projects import get_project

CALLERS = (None, "annotator", "reviewer", "lead", "admin", "other")
CALLER_IDS = ("anonymous", "annotator", "reviewer", "lead", "admin", "other")
QUEUE_USERS = ("annotator", "reviewer", "lead", "admin")


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    expected: tuple[int, int, int, int, int, int]  # in the order of CALLERS
    body: dict | Callable[[dict], dict] | None = None
    setup: Callable[..., dict] | None = None


def own_answer(ctx, caller):
    """An answer of the caller's own to undo (callers who may use the queue)."""
    if caller in QUEUE_USERS:
        submit(ctx.factory, caller, claim(ctx.factory, caller, "alpha"))
    return {}


def annotator_lease(ctx, caller):
    return {"lease": claim(ctx.factory, "annotator", "alpha")}


def beta_lease(ctx, caller):
    return {"lease": claim(ctx.factory, "other", "beta")}


def alpha_item(ctx, caller):
    from sqlalchemy import select

    from labelwise.service.store.schema import Item

    with transaction(ctx.factory) as session:
        item_id = session.scalar(select(Item.id).where(Item.external_id == "alpha-0"))
    return {"item_id": item_id}


def calibration_session(ctx, caller):
    """A fresh open session over alpha-0 … alpha-19 (and its first item)."""
    from labelwise.service.store.calibration import create_session

    with transaction(ctx.factory) as session:
        project = get_visible_project(
            session=session, member=_admin(session), name="alpha"
        )
        row = create_session(
            session=session,
            project=project,
            creator=None,
            name=f"session for {caller}",
            external_ids=[f"alpha-{n}" for n in range(20)],
        )
        session_id = row.id
    return {"session": session_id, **alpha_item(ctx, caller)}


def _admin(session):
    from sqlalchemy import select

    from labelwise.service.store.schema import Member

    return session.scalar(select(Member).where(Member.name == "admin"))


def alpha_label(ctx, caller):
    """A final label in alpha, for the release cases."""
    submit(ctx.factory, "annotator", claim(ctx.factory, "annotator", "alpha"))
    return {}


def alpha_job(ctx, caller):
    from labelwise.service.loop.jobs import request_training

    with transaction(ctx.factory) as session:
        project = get_project(session=session, name="alpha")
        job, _ = request_training(session=session, project=project, trigger="api")
        return {"job_id": job.id}


def alpha_release(ctx, caller):
    from labelwise.service.loop.releases import create_release

    alpha_label(ctx, caller)
    with transaction(ctx.factory) as session:
        project = get_project(session=session, name="alpha")
        release_id = create_release(session=session, project=project).release_id
        return {"release_id": release_id, "other": release_id}


A, NO, AUTH = 200, 403, 401
LEADS = (AUTH, NO, NO, A, A, 404)
MATRIX = [
    # name, method, path, expected (anonymous, annotator, reviewer, lead, admin, other)
    Case("health", "GET", "/health", (A, A, A, A, A, A)),
    Case("me", "GET", "/me", (AUTH, A, A, A, A, A)),
    Case("projects.list", "GET", "/projects", (AUTH, A, A, A, A, A)),
    Case(
        "projects.create",
        "POST",
        "/projects",
        (AUTH, NO, NO, 201, 201, 201),
        body={"name": "new-{caller}", "labels": ["x", "y"]},
    ),
    Case("projects.read", "GET", "/projects/alpha", (AUTH, A, A, A, A, 404)),
    Case("items.list", "GET", "/projects/alpha/items", (AUTH, NO, NO, A, A, 404)),
    Case(
        "items.read", "GET", "/projects/alpha/items/alpha-0", (AUTH, NO, NO, A, A, 404)
    ),
    Case("rounds.list", "GET", "/projects/alpha/rounds", (AUTH, NO, NO, A, A, 404)),
    Case("report", "GET", "/projects/alpha/report", (AUTH, NO, NO, A, A, 404)),
    Case(
        "rounds.create",
        "POST",
        "/projects/alpha/rounds",
        (AUTH, NO, NO, 201, 201, 404),
        body={"batch_size": 40, "policy": "random", "seed": 3},
    ),
    Case(
        "scores.histogram",
        "GET",
        "/projects/alpha/scores/histogram",
        (AUTH, NO, NO, A, A, 404),
    ),
    Case(
        "annotations.list",
        "GET",
        "/projects/alpha/annotations",
        (AUTH, NO, NO, A, A, 404),
    ),
    Case(
        "project_members.list",
        "GET",
        "/projects/alpha/members",
        (AUTH, NO, NO, A, A, 404),
    ),
    Case(
        "project_members.add",
        "POST",
        "/projects/alpha/members",
        (AUTH, NO, NO, 201, 201, 404),
        body={"name": "joiner-{caller}"},
    ),
    Case("members.list", "GET", "/members", (AUTH, NO, NO, NO, A, NO)),
    Case(
        "members.create",
        "POST",
        "/members",
        (AUTH, NO, NO, NO, 201, NO),
        body={"name": "made-by-{caller}", "role": "annotator"},
    ),
    Case(
        "members.update",
        "PATCH",
        "/members/target",
        (AUTH, NO, NO, NO, A, NO),
        body={"active": True},
    ),
    Case("queue.next", "POST", "/projects/alpha/next", (AUTH, A, A, A, A, 404)),
    Case("queue.status", "GET", "/projects/alpha/queue", (AUTH, A, A, A, A, 404)),
    Case(
        "queue.undo",
        "POST",
        "/projects/alpha/undo",
        (AUTH, A, A, A, A, 404),
        setup=own_answer,
    ),
    Case(
        "lease.annotation",
        "POST",
        "/leases/{lease}/annotation",
        (AUTH, 201, NO, NO, NO, 404),
        body={"label": "bug", "time_spent_ms": 1200},
        setup=annotator_lease,
    ),
    Case(
        "lease.skip",
        "POST",
        "/leases/{lease}/skip",
        (AUTH, A, NO, NO, NO, 404),
        setup=annotator_lease,
    ),
    Case(
        "lease.flag",
        "POST",
        "/leases/{lease}/flag",
        (AUTH, A, NO, NO, NO, 404),
        body={"flag": "ambiguous", "note": "two intents"},
        setup=annotator_lease,
    ),
    Case(
        "lease.renew",
        "POST",
        "/leases/{lease}/renew",
        (AUTH, A, NO, NO, NO, 404),
        setup=annotator_lease,
    ),
    Case("quality.agreement", "GET", "/projects/alpha/agreement", LEADS),
    Case("quality.annotators", "GET", "/projects/alpha/annotators/quality", LEADS),
    Case("quality.settings", "GET", "/projects/alpha/quality-settings", LEADS),
    Case(
        "quality.settings_update",
        "PATCH",
        "/projects/alpha/quality-settings",
        LEADS,
        body={"tie": "first"},
    ),
    Case("quality.aggregate", "POST", "/projects/alpha/aggregate", LEADS),
    Case("quality.export", "GET", "/projects/alpha/quality-export", LEADS),
    Case("disputes.list", "GET", "/projects/alpha/disputes", (AUTH, NO, A, A, A, 404)),
    Case(
        "disputes.resolve",
        "POST",
        "/projects/alpha/disputes/{item_id}/resolve",
        (AUTH, NO, A, A, A, 404),
        body={"label": "bug"},
        setup=alpha_item,
    ),
    Case(
        "calibration.list",
        "GET",
        "/projects/alpha/calibration",
        (AUTH, A, A, A, A, 404),
    ),
    Case(
        "calibration.create",
        "POST",
        "/projects/alpha/calibration",
        (AUTH, NO, NO, 201, 201, 404),
        body={"name": "by {caller}", "external_ids": [f"alpha-{n}" for n in range(20)]},
    ),
    Case(
        "calibration.read",
        "GET",
        "/projects/alpha/calibration/{session}",
        LEADS,
        setup=calibration_session,
    ),
    Case(
        "calibration.next",
        "GET",
        "/projects/alpha/calibration/{session}/next",
        (AUTH, A, A, NO, NO, 404),
        setup=calibration_session,
    ),
    Case(
        "calibration.answer",
        "POST",
        "/projects/alpha/calibration/{session}/answers",
        (AUTH, 201, 201, NO, NO, 404),
        body=lambda values: {"item_id": values["item_id"], "label": "bug"},
        setup=calibration_session,
    ),
    Case(
        "calibration.close",
        "POST",
        "/projects/alpha/calibration/{session}/close",
        LEADS,
        body={},
        setup=calibration_session,
    ),
    Case(
        "train.request",
        "POST",
        "/projects/alpha/train",
        (AUTH, NO, NO, 202, 202, 404),
        body={"batch_size": 5},
    ),
    Case("train.jobs", "GET", "/projects/alpha/train/jobs", (AUTH, NO, NO, A, A, 404)),
    Case(
        "train.job",
        "GET",
        "/projects/alpha/train/jobs/{job_id}",
        (AUTH, NO, NO, A, A, 404),
        setup=alpha_job,
    ),
    Case(
        "model_versions",
        "GET",
        "/projects/alpha/model-versions",
        (AUTH, NO, NO, A, A, 404),
    ),
    Case("failures", "GET", "/projects/alpha/failures", (AUTH, NO, NO, A, A, 404)),
    Case("releases.list", "GET", "/projects/alpha/releases", (AUTH, NO, NO, A, A, 404)),
    Case(
        "releases.create",
        "POST",
        "/projects/alpha/releases",
        (AUTH, NO, NO, 201, 201, 404),
        body={"note": "by {caller}"},
        setup=alpha_label,
    ),
    Case(
        "releases.read",
        "GET",
        "/projects/alpha/releases/{release_id}",
        (AUTH, NO, NO, A, A, 404),
        setup=alpha_release,
    ),
    Case(
        "releases.diff",
        "GET",
        "/projects/alpha/releases/{release_id}/diff/{other}",
        (AUTH, NO, NO, A, A, 404),
        setup=alpha_release,
    ),
    Case(
        "releases.rollback",
        "POST",
        "/projects/alpha/releases/{release_id}/rollback",
        (AUTH, NO, NO, A, A, 404),
        setup=alpha_release,
    ),
    # A lease of project beta: invisible to alpha's members, the admin sees it
    # but does not hold it, and its holder (other) may skip it.
    Case(
        "lease.other_project",
        "POST",
        "/leases/{lease}/skip",
        (AUTH, 404, 404, 404, NO, A),
        setup=beta_lease,
    ),
]

CASES = [
    pytest.param(case, caller, expected, id=f"{case.name}-{caller_id}")
    for case in MATRIX
    for caller, caller_id, expected in zip(
        CALLERS, CALLER_IDS, case.expected, strict=True
    )
]


@dataclass
class Matrix:
    client: TestClient
    world: World

    @property
    def factory(self):
        return self.world.factory


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def matrix(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("matrix") / "store.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        truncate_postgres(url)
    # No training worker: queued training jobs must not swap alpha's queue.
    settings = make_settings(url).model_copy(update={"train_worker": False})
    app = create_app(settings)
    with TestClient(app) as client:
        world = World(factory=app.state.session_factory)
        world.project("alpha", items=40)
        world.project("beta", items=6)
        world.member("annotator", "annotator", "alpha")
        world.member("reviewer", "reviewer", "alpha")
        world.member("lead", "lead", "alpha")
        world.member("admin", "admin")
        world.member("other", "lead", "beta")
        world.member("target", "annotator")
        for caller in CALLER_IDS:
            world.member(f"joiner-{caller}", "annotator")
        for project in ("alpha", "beta"):
            response = client.post(
                f"{API}/projects/{project}/rounds",
                json={"batch_size": 40, "policy": "random", "seed": 0},
                headers=world.headers("admin"),
            )
            assert response.status_code == 201, response.text
        yield Matrix(client, world)


def call(matrix, case, caller, values):
    caller_id = caller or "anonymous"
    path = API + case.path.format(**values)
    body = None
    if callable(case.body):
        body = case.body(values)
    elif case.body is not None:
        body = {
            key: value.format(caller=caller_id) if isinstance(value, str) else value
            for key, value in case.body.items()
        }
    return matrix.client.request(
        case.method, path, json=body, headers=matrix.world.headers(caller)
    )


@pytest.mark.parametrize(("case", "caller", "expected"), CASES)
def test_role_endpoint_matrix(matrix, case, caller, expected):
    values = case.setup(matrix, caller) if case.setup else {}
    response = call(matrix, case, caller, values)
    if expected >= 400:
        assert_canonical_error(response, expected)
    else:
        assert response.status_code == expected, response.text
    if expected == 404:
        # Nothing of alpha's items or members shows through the 404.
        for secret in ("ticket", "alpha-", "annotator", "reviewer"):
            assert secret not in response.text


def test_the_matrix_covers_every_endpoint(matrix):
    paths = matrix.client.get(f"{API}/openapi.json").json()["paths"]
    documented = {
        (method.upper(), path) for path, methods in paths.items() for method in methods
    }
    covered = set()
    for case in MATRIX:
        path = API + case.path.replace("{lease}", "{lease_id}")
        path = path.replace("/items/alpha-0", "/items/{external_id}")
        path = path.replace("/alpha", "/{project}").replace("/target", "/{name}")
        path = path.replace("{session}", "{session_id}")
        covered.add((case.method, path))
    assert documented == covered


def test_a_hidden_project_reads_exactly_like_a_missing_one(matrix):
    other = matrix.world.headers("other")
    for suffix in ("", "/items", "/rounds", "/annotations", "/members", "/queue"):
        hidden = matrix.client.get(f"{API}/projects/alpha{suffix}", headers=other)
        missing = matrix.client.get(f"{API}/projects/zzzzz{suffix}", headers=other)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {
            "error": {
                **missing.json()["error"],
                "message": missing.json()["error"]["message"].replace("zzzzz", "alpha"),
            }
        }


def test_project_lists_show_only_the_callers_projects(matrix):
    def names(caller):
        response = matrix.client.get(
            f"{API}/projects", headers=matrix.world.headers(caller)
        )
        return {project["name"] for project in response.json()}

    assert "alpha" not in names("other") and "beta" in names("other")
    assert "beta" not in names("annotator") and "alpha" in names("annotator")
    assert {"alpha", "beta"} <= names("admin")
    me = matrix.client.get(f"{API}/me", headers=matrix.world.headers("other")).json()
    assert "alpha" not in me["projects"]
    with transaction(matrix.factory) as session:
        from sqlalchemy import select

        from labelwise.service.store.schema import Member

        member = session.scalar(select(Member).where(Member.name == "admin"))
        assert get_visible_project(session=session, member=member, name="beta")


def test_a_lead_adds_members_only_to_its_own_project(matrix):
    lead = matrix.world.headers("lead")
    response = matrix.client.post(
        f"{API}/projects/beta/members", json={"name": "target"}, headers=lead
    )
    assert_canonical_error(response, 404, "not_found")
    response = matrix.client.post(
        f"{API}/projects/alpha/members", json={"name": "target"}, headers=lead
    )
    assert response.status_code in (200, 201)
    again = matrix.client.post(
        f"{API}/projects/alpha/members", json={"name": "target"}, headers=lead
    )
    assert again.status_code == 200 and again.json()["added"] is False


def status(matrix, method, path, who, body=None):
    headers = matrix.world.headers(who)
    return matrix.client.request(method, API + path, json=body, headers=headers)


def test_new_project_belongs_to_its_creating_lead(matrix):
    body = {"name": "lead-made", "labels": ["x", "y"]}
    assert status(matrix, "POST", "/projects", "lead", body).status_code == 201
    assert status(matrix, "GET", "/projects/lead-made", "lead").status_code == 200
    assert status(matrix, "GET", "/projects/lead-made", "other").status_code == 404


def test_a_deactivated_member_is_locked_out(matrix):
    admin = matrix.world.headers("admin")
    matrix.world.member("leaver", "annotator", "alpha")
    assert status(matrix, "GET", "/me", "leaver").status_code == 200
    response = matrix.client.patch(
        f"{API}/members/leaver", json={"active": False}, headers=admin
    )
    assert response.status_code == 200 and response.json()["active"] is False
    response = matrix.client.get(f"{API}/me", headers=matrix.world.headers("leaver"))
    assert_canonical_error(response, 401, "not_authenticated")
    response = matrix.client.patch(
        f"{API}/members/admin", json={"role": "lead"}, headers=admin
    )
    assert_canonical_error(response, 409, "conflict")
