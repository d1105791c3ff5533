"""The queue end to end over HTTP: next → answer 201 → replay 200 → … → 204."""

import pytest
from apitools import API, assert_canonical_error, bearer
from sqlalchemy import func, select

from labelwise.service.api.deps import get_now
from labelwise.service.store.engine import read_only
from labelwise.service.store.schema import Annotation, Lease


@pytest.fixture
def team(world, client):
    world.project("tickets", items=3)
    tokens = {
        "lead": world.member("lea", "lead", "tickets"),
        "ana": world.member("ana", "annotator", "tickets"),
        "bo": world.member("bo", "annotator", "tickets"),
    }
    response = client.post(
        f"{API}/projects/tickets/rounds",
        json={"batch_size": 3, "policy": "random", "seed": 7},
        headers=bearer(tokens["lead"]),
    )
    assert response.status_code == 201, response.text
    summary = response.json()
    assert summary["selected"] == 3 and summary["counts_by_reason"] == {"random": 3}
    return tokens


def test_claim_answer_replay_until_done(client, team, app):
    ana = bearer(team["ana"])
    answered = []
    for n in range(3):
        claimed = client.post(f"{API}/projects/tickets/next", headers=ana)
        assert claimed.status_code == 200, claimed.text
        body = claimed.json()
        assert set(body) == {"lease_id", "item", "expires_at", "reason"}
        assert set(body["item"]) == {"id", "external_id", "fields"}
        assert body["reason"] == "random"
        assert body["expires_at"].endswith("Z") or "+00:00" in body["expires_at"]
        lease = body["lease_id"]
        answer = {"label": "bug", "time_spent_ms": 900 + n, "idempotency_key": f"k-{n}"}
        first = client.post(
            f"{API}/leases/{lease}/annotation", json=answer, headers=ana
        )
        assert first.status_code == 201, first.text
        assert set(first.json()) == {"id", "lease_id", "item_id", "label", "created_at"}
        assert first.json()["lease_id"] == lease
        assert first.json()["item_id"] == body["item"]["id"]
        replay = client.post(
            f"{API}/leases/{lease}/annotation", json=answer, headers=ana
        )
        assert replay.status_code == 200
        assert replay.json() == first.json()
        answered.append(first.json()["id"])
    done = client.post(f"{API}/projects/tickets/next", headers=ana)
    assert done.status_code == 204
    assert done.content == b""
    assert done.headers["x-labelwise-reason"] == "exhausted"
    # Every acknowledged answer is committed, once.
    with read_only(app.state.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 3
    # The lead reads them back, keyset paged.
    lead = bearer(team["lead"])
    page = client.get(
        f"{API}/projects/tickets/annotations", params={"limit": 2}, headers=lead
    ).json()
    assert [row["id"] for row in page["items"]] == answered[:2]
    row = page["items"][0]
    assert set(row) == {
        "id",
        "item_id",
        "external_id",
        "annotator",
        "label",
        "created_at",
        "time_spent_ms",
        "reason",
        "round_id",
        "flag",
    }
    assert row["annotator"] == "ana" and row["label"] == "bug"
    assert row["time_spent_ms"] == 900 and row["reason"] == "random"
    assert row["round_id"] is not None and row["flag"] is None
    rest = client.get(
        f"{API}/projects/tickets/annotations",
        params={"limit": 2, "cursor": page["next"]},
        headers=lead,
    ).json()
    assert [row["id"] for row in rest["items"]] == answered[2:]
    assert rest["next"] is None


def test_skip_flag_renew_undo_and_status(client, team, app):
    ana, bo = bearer(team["ana"]), bearer(team["bo"])
    first = client.post(f"{API}/projects/tickets/next", headers=ana).json()
    renewed = client.post(f"{API}/leases/{first['lease_id']}/renew", headers=ana)
    assert renewed.status_code == 200
    assert renewed.json()["status"] == "active"
    assert renewed.json()["expires_at"] >= first["expires_at"]
    skipped = client.post(f"{API}/leases/{first['lease_id']}/skip", headers=ana)
    assert skipped.json() == {
        "lease_id": first["lease_id"],
        "status": "skipped",
        "expires_at": skipped.json()["expires_at"],
    }
    again = client.post(f"{API}/leases/{first['lease_id']}/skip", headers=ana)
    assert_canonical_error(again, 409, "conflict")
    # The skipped item goes to bo, never back to ana.
    to_bo = client.post(f"{API}/projects/tickets/next", headers=bo).json()
    assert to_bo["item"]["id"] == first["item"]["id"]
    flagged = client.post(
        f"{API}/leases/{to_bo['lease_id']}/flag",
        json={"flag": "guideline_gap", "note": "refund or bug?"},
        headers=bo,
    )
    assert flagged.status_code == 200 and flagged.json()["status"] == "flagged"
    bad_flag = client.post(
        f"{API}/leases/{to_bo['lease_id']}/flag", json={"flag": "meh"}, headers=bo
    )
    assert_canonical_error(bad_flag, 400, "invalid_input")
    second = client.post(f"{API}/projects/tickets/next", headers=ana).json()
    bad_label = client.post(
        f"{API}/leases/{second['lease_id']}/annotation",
        json={"label": "spam"},
        headers=ana,
    )
    error = assert_canonical_error(bad_label, 400, "invalid_input")
    assert "bug, ask" in error["message"]
    saved = client.post(
        f"{API}/leases/{second['lease_id']}/annotation",
        json={"label": "ask"},
        headers=ana,
    )
    assert saved.status_code == 201
    status = client.get(f"{API}/projects/tickets/queue", headers=ana).json()
    assert status["project"] == "tickets" and status["flagged"] == 1
    assert status["member"]["done_today"] == 1
    undone = client.post(f"{API}/projects/tickets/undo", headers=ana)
    assert undone.status_code == 200 and undone.json()["id"] == saved.json()["id"]
    with read_only(app.state.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0
        assert session.get(Lease, second["lease_id"]).status == "active"


def test_expired_lease_is_409_lease_expired(client, team, app):
    from datetime import UTC, datetime, timedelta

    ana = bearer(team["ana"])
    claimed = client.post(f"{API}/projects/tickets/next", headers=ana).json()
    later = datetime.now(UTC) + timedelta(hours=2)
    app.dependency_overrides[get_now] = lambda: later
    try:
        response = client.post(
            f"{API}/leases/{claimed['lease_id']}/annotation",
            json={"label": "bug"},
            headers=ana,
        )
    finally:
        app.dependency_overrides.clear()
    error = assert_canonical_error(response, 409, "lease_expired")
    assert "expired" in error["message"] and error["hint"]


def test_someone_elses_lease_is_403_and_unknown_lease_404(client, team):
    claimed = client.post(
        f"{API}/projects/tickets/next", headers=bearer(team["ana"])
    ).json()
    response = client.post(
        f"{API}/leases/{claimed['lease_id']}/annotation",
        json={"label": "bug"},
        headers=bearer(team["bo"]),
    )
    assert_canonical_error(response, 403, "permission_denied")
    response = client.post(f"{API}/leases/999999/skip", headers=bearer(team["ana"]))
    assert_canonical_error(response, 404, "not_found")
    response = client.post(f"{API}/leases/0/skip", headers=bearer(team["ana"]))
    assert_canonical_error(response, 422, "invalid_request")


def test_claim_and_submit_check_the_token_in_every_request(client, team, app, world):
    """The hot paths read the token with the project or lease, in the request's
    own transaction: no cache, so a new token, a deactivation or a removal from
    the project is refused on the very next request, 401 before 404."""
    from labelwise.service.store.engine import transaction
    from labelwise.service.store.members import rotate_token, update_member

    ana, bo = bearer(team["ana"]), bearer(team["bo"])
    claimed = client.post(f"{API}/projects/tickets/next", headers=ana).json()
    answer = f"{API}/leases/{claimed['lease_id']}/annotation"
    with transaction(app.state.session_factory) as session:
        _, fresh = rotate_token(session=session, member="ana")
    for response in (
        client.post(f"{API}/projects/tickets/next", headers=ana),
        client.post(f"{API}/projects/nowhere/next", headers=ana),
        client.post(answer, json={"label": "bug"}, headers=ana),
        client.post(f"{API}/leases/999999/annotation", json={"label": "bug"}),
    ):
        assert_canonical_error(response, 401, "not_authenticated")
    saved = client.post(answer, json={"label": "bug"}, headers=bearer(fresh))
    assert saved.status_code == 201, saved.text

    missing = client.post(f"{API}/projects/nowhere/next", headers=bo)
    assert "Your projects: tickets." in assert_canonical_error(missing, 404)["message"]
    assert_canonical_error(
        client.post(answer, json={"label": "bug"}, headers=bo), 403, "permission_denied"
    )
    with transaction(app.state.session_factory) as session:
        update_member(session=session, member="bo", active=False)
    assert_canonical_error(client.post(f"{API}/projects/tickets/next", headers=bo), 401)
