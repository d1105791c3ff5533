"""Calibration sessions over HTTP, on SQLite and PostgreSQL: create (by hand or by
rule), annotators answer blind, the report, close with a new guideline version."""

import pytest
from apitools import API, assert_canonical_error, bearer
from sqlalchemy import func, select

from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.schema import (
    Annotation,
    CalibrationAnswer,
    FinalLabel,
    Guideline,
    Item,
)


@pytest.fixture
def team(world, client):
    world.project("tickets", items=30)
    return {
        "lee": world.member("lee", "lead", "tickets"),
        "ana": world.member("ana", "annotator", "tickets"),
        "bo": world.member("bo", "annotator", "tickets"),
    }


def item_ids(app, n: int) -> list[int]:
    with read_only(app.state.session_factory) as session:
        return list(session.scalars(select(Item.id).order_by(Item.id).limit(n)))


def create(client, token, **body):
    return client.post(
        f"{API}/projects/tickets/calibration",
        json={"name": "billing vs bug", **body},
        headers=bearer(token),
    )


def label_all(client, token, session_id, choose) -> int:
    n = 0
    url = f"{API}/projects/tickets/calibration/{session_id}"
    while True:
        shown = client.get(f"{url}/next", headers=bearer(token))
        if shown.status_code == 204:
            return n
        assert shown.status_code == 200, shown.text
        body = shown.json()
        assert set(body) == {"session_id", "item", "position", "answered", "total"}
        assert body["answered"] == n and body["total"] == 20
        answered = client.post(
            f"{url}/answers",
            json={"item_id": body["item"]["id"], "label": choose(n)},
            headers=bearer(token),
        )
        assert answered.status_code == 201, answered.text
        n += 1


def test_session_runs_end_to_end(client, app, team):
    ids = item_ids(app, 20)
    assert_canonical_error(create(client, team["ana"], item_ids=ids), 403)
    assert_canonical_error(create(client, team["lee"], item_ids=ids[:19]), 400)
    assert_canonical_error(
        create(client, team["lee"], item_ids=[*ids[:19], ids[0]]), 400
    )
    assert_canonical_error(create(client, team["lee"], item_ids=ids, size=10), 422)
    created = create(client, team["lee"], item_ids=ids)
    assert created.status_code == 201, created.text
    report = created.json()
    sid = report["id"]
    assert report["status"] == "open" and report["n_items"] == 20
    assert report["rule"] == "manual"
    url = f"{API}/projects/tickets/calibration/{sid}"
    # Annotators see the open session and their own progress only.
    mine = client.get(
        f"{API}/projects/tickets/calibration", headers=bearer(team["ana"])
    )
    assert mine.status_code == 200
    assert [(s["id"], s["my_answers"]) for s in mine.json()] == [(sid, 0)]
    assert "n_answers" not in mine.json()[0]
    assert_canonical_error(client.get(url, headers=bearer(team["ana"])), 403)
    assert_canonical_error(client.get(f"{url}/next", headers=bearer(team["lee"])), 403)
    # ana: all bug; bo: the first 5 ask, the rest bug.
    assert label_all(client, team["ana"], sid, lambda n: "bug") == 20
    assert label_all(client, team["bo"], sid, lambda n: "ask" if n < 5 else "bug") == 20
    again = client.post(
        f"{url}/answers",
        json={"item_id": ids[0], "label": "bug"},
        headers=bearer(team["ana"]),
    )
    assert_canonical_error(again, 409, "conflict")
    outside = client.post(
        f"{url}/answers",
        json={"item_id": item_ids(app, 21)[-1], "label": "bug"},
        headers=bearer(team["ana"]),
    )
    assert_canonical_error(outside, 404)
    report = client.get(url, headers=bearer(team["lee"])).json()
    assert report["n_answers"] == 40 and report["split_items"] == 5
    assert report["agreement"]["n_items"] == 20
    assert report["agreement"]["percent_agreement"] == pytest.approx(15 / 20)
    split = [entry for entry in report["items"] if entry["split"]]
    assert [entry["position"] for entry in split] == [1, 2, 3, 4, 5]
    assert split[0]["answers"] == {"ask": 1, "bug": 1}
    assert {p["annotator"]: p["answered"] for p in report["participants"]} == {
        "ana": 20,
        "bo": 20,
    }
    # Answers never become annotations or final labels.
    with read_only(app.state.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0
        assert session.scalar(select(func.count()).select_from(FinalLabel)) == 0
        assert session.scalar(select(func.count()).select_from(CalibrationAnswer)) == 40
    closed = client.post(
        f"{url}/close",
        json={"guideline": "Charged twice is billing; questions are ask."},
        headers=bearer(team["lee"]),
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["published_guideline_version"] == 1
    with read_only(app.state.session_factory) as session:
        guideline = session.scalar(select(Guideline))
        assert guideline.text.startswith("Charged twice")
        assert guideline.note == f"Calibration session {sid}: billing vs bug"
    assert_canonical_error(
        client.post(f"{url}/close", json={}, headers=bearer(team["lee"])), 409
    )
    late = client.post(
        f"{url}/answers",
        json={"item_id": ids[0], "label": "bug"},
        headers=bearer(team["bo"]),
    )
    assert_canonical_error(late, 409)
    assert (
        client.get(
            f"{API}/projects/tickets/calibration", headers=bearer(team["ana"])
        ).json()
        == []
    )
    exported = client.get(
        f"{API}/projects/tickets/quality-export", headers=bearer(team["lee"])
    ).json()
    assert [g["version"] for g in exported["guidelines"]] == [1]
    (only,) = exported["sessions"]
    assert only["status"] == "closed" and len(only["answers"]) == 40
    assert len(only["items"]) == 20 and only["agreement"]["n_labels"] == 40


def test_rules_pick_the_most_disputed(client, app, team):
    ids = item_ids(app, 30)
    short = create(client, team["lee"], rule="most_disputed", size=20)
    error = assert_canonical_error(short, 400, "invalid_input")
    assert "found only 0" in error["message"]
    with transaction(app.state.session_factory) as session:
        project_id = session.scalar(select(Item.project_id))
        for n, item_id in enumerate(ids):
            votes = ['"bug"', '"ask"'] if n < 22 else ['"bug"', '"bug"']
            if n < 3:
                votes.append('"bug"')  # 2 of 3 agree: less disputed than 1-1
            for label in votes:
                session.add(
                    Annotation(
                        project_id=project_id,
                        item_id=item_id,
                        label=label,
                        source="queue",
                        provenance={},
                    )
                )
    made = create(client, team["lee"], rule="most_disputed", size=20, seed=1)
    assert made.status_code == 201, made.text
    chosen = {entry["item_id"] for entry in made.json()["items"]}
    # The 19 one-one splits first, then one of the three two-to-one splits.
    assert len(chosen) == 20 and set(ids[3:22]) <= chosen
    assert len(chosen & set(ids[:3])) == 1
    uncertain = create(client, team["lee"], rule="most_uncertain", size=20)
    assert_canonical_error(uncertain, 400)
