"""Label quality end to end over HTTP, on SQLite and PostgreSQL.

Two annotators disagree → the item is in the reviewer queue and out of the
training set → the reviewer's label is final (the raw votes stay) → it is in
the next round's training set. Plus the dispute rules, aggregation methods,
the leads' agreement and annotator-quality figures, and their 403s.
"""

import pandas as pd
import pytest
from apitools import API, assert_canonical_error, bearer
from sqlalchemy import func, select

from labelwise.policy import BatchPolicy, CapRule
from labelwise.quality import agreement_report
from labelwise.service.loop import rounds as rounds_module
from labelwise.service.store.engine import read_only
from labelwise.service.store.schema import Annotation, FinalLabel, Item

OVERLAP = BatchPolicy(
    components=(),
    random_fraction=1.0,
    caps=CapRule(min_normal_share=0.0),
    overlap_k=2,
    overlap_rate=1.0,
    gold_rate=0.0,
    name="overlap-tests",
).to_dict()


@pytest.fixture
def team(world, client):
    world.project("tickets", items=12)
    tokens = {
        "lee": world.member("lee", "lead", "tickets"),
        "ana": world.member("ana", "annotator", "tickets"),
        "bo": world.member("bo", "annotator", "tickets"),
        "rita": world.member("rita", "reviewer", "tickets"),
    }
    response = client.post(
        f"{API}/projects/tickets/rounds",
        json={"batch_size": 4, "policy": OVERLAP, "seed": 3},
        headers=bearer(tokens["lee"]),
    )
    assert response.status_code == 201, response.text
    return tokens


def answer_all(client, token: str, choose) -> dict[int, str]:
    """Claim and answer until the queue is empty; item id -> label given."""
    given = {}
    while True:
        claimed = client.post(f"{API}/projects/tickets/next", headers=bearer(token))
        if claimed.status_code == 204:
            return given
        assert claimed.status_code == 200, claimed.text
        body = claimed.json()
        label = choose(body["item"]["id"])
        answered = client.post(
            f"{API}/leases/{body['lease_id']}/annotation",
            json={"label": label, "time_spent_ms": 2000},
            headers=bearer(token),
        )
        assert answered.status_code == 201, answered.text
        given[body["item"]["id"]] = label


@pytest.fixture
def disagreement(client, team):
    """ana says bug everywhere; bo says ask on the first item: one disputed item."""
    items = sorted(answer_all(client, team["ana"], lambda _: "bug"))
    disputed = items[0]
    answer_all(client, team["bo"], lambda i: "ask" if i == disputed else "bug")
    return items, disputed


@pytest.fixture
def training_sets(monkeypatch):
    """The item ids of every training set run_round reads (pool and failure)."""
    seen: list[list[int]] = []
    original = rounds_module._labeled

    def spy(session, project, roles):
        labeled, fields = original(session, project, roles)
        if roles == ("pool", "failure"):
            seen.append(list(labeled.item_ids))
        return labeled, fields

    monkeypatch.setattr(rounds_module, "_labeled", spy)
    return seen


def finals(app) -> dict[int, tuple[str, str, float | None]]:
    with read_only(app.state.session_factory) as session:
        rows = session.execute(
            select(
                FinalLabel.item_id,
                FinalLabel.label,
                FinalLabel.method,
                FinalLabel.confidence,
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_disagreement_goes_to_review_then_into_training(
    client, app, team, disagreement, training_sets
):
    items, disputed = disagreement
    # The dispute is in the reviewer queue, with both raw votes.
    queue = client.get(f"{API}/projects/tickets/disputes", headers=bearer(team["rita"]))
    assert queue.status_code == 200, queue.text
    listed = queue.json()["items"]
    assert [d["item_id"] for d in listed] == [disputed]
    assert listed[0]["reasons"] == ["disagreement"]
    assert sorted(a["label"] for a in listed[0]["answers"]) == ["ask", "bug"]
    assert_canonical_error(
        client.get(f"{API}/projects/tickets/disputes", headers=bearer(team["ana"])),
        403,
        "permission_denied",
    )
    # Agreed items are final; the disputed one is not, so it is not trained on.
    before = finals(app)
    assert disputed not in before
    assert {before[i][1] for i in items[1:]} == {"agreement"}
    assert all(before[i][2] == 1.0 for i in items[1:])
    round2 = client.post(
        f"{API}/projects/tickets/rounds",
        json={"batch_size": 2, "policy": OVERLAP, "seed": 4},
        headers=bearer(team["lee"]),
    )
    assert round2.status_code == 201, round2.text
    assert disputed not in training_sets[-1]
    assert set(items[1:]) <= set(training_sets[-1])
    # The reviewer settles it: final, adjudicated, the votes kept.
    resolved = client.post(
        f"{API}/projects/tickets/disputes/{disputed}/resolve",
        json={"label": "ask", "note": "asks are questions"},
        headers=bearer(team["rita"]),
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["method"] == "adjudicated"
    assert finals(app)[disputed][:2] == ('"ask"', "adjudicated")
    with read_only(app.state.session_factory) as session:
        sources = sorted(
            session.scalars(
                select(Annotation.source).where(Annotation.item_id == disputed)
            )
        )
    assert sources == ["queue", "queue", "review"]
    gone = client.get(f"{API}/projects/tickets/disputes", headers=bearer(team["rita"]))
    assert gone.json()["items"] == []
    round3 = client.post(
        f"{API}/projects/tickets/rounds",
        json={"batch_size": 2, "policy": OVERLAP, "seed": 5},
        headers=bearer(team["lee"]),
    )
    assert round3.status_code == 201, round3.text
    assert disputed in training_sets[-1]


def test_dispute_rules_and_aggregation_are_per_project(client, app, team, disagreement):
    items, disputed = disagreement
    lee = bearer(team["lee"])
    url = f"{API}/projects/tickets/quality-settings"
    assert client.get(url, headers=lee).json() == {
        "dispute_rules": {"disagreement": True, "gold_failure": True, "flag": True},
        "aggregation": "majority",
        "tie": "first",
    }
    assert_canonical_error(
        client.patch(
            url, json={"aggregation": "majority"}, headers=bearer(team["ana"])
        ),
        403,
    )
    assert_canonical_error(
        client.patch(url, json={"aggregation": "mean"}, headers=lee), 422
    )
    # Rule off: the 1-1 tie is settled by majority with the first label ("bug").
    off = client.patch(
        url, json={"dispute_rules": {"disagreement": False}}, headers=lee
    )
    assert off.status_code == 200, off.text
    assert off.json()["dispute_rules"]["disagreement"] is False
    assert finals(app)[disputed] == ('"bug"', "majority", 0.5)
    disputes = client.get(f"{API}/projects/tickets/disputes", headers=lee).json()
    assert disputes["items"] == []
    # Back on: the item leaves the final labels and returns to review.
    client.patch(url, json={"dispute_rules": {"disagreement": True}}, headers=lee)
    assert disputed not in finals(app)
    disputes = client.get(f"{API}/projects/tickets/disputes", headers=lee).json()
    assert [d["item_id"] for d in disputes["items"]] == [disputed]
    # Dawid-Skene: every undisputed queue label carries its posterior.
    ds = client.patch(
        url,
        json={"aggregation": "dawid_skene", "dispute_rules": {"disagreement": False}},
        headers=lee,
    )
    assert ds.status_code == 200
    labels = finals(app)
    assert {labels[i][1] for i in items} == {"dawid_skene"}
    assert all(0.0 <= labels[i][2] <= 1.0 for i in items)
    summary = client.post(f"{API}/projects/tickets/aggregate", headers=lee).json()
    assert summary == {
        "method": "dawid_skene",
        "final": len(items),
        "review": 0,
        "waiting": 0,
        "kept": 0,
    }


def test_agreement_and_annotator_quality_are_for_leads(client, app, team, disagreement):
    lee = bearer(team["lee"])
    figures = client.get(f"{API}/projects/tickets/agreement", headers=lee)
    assert figures.status_code == 200, figures.text
    body = figures.json()
    with read_only(app.state.session_factory) as session:
        rows = session.execute(
            select(Annotation.item_id, Annotation.member_id, Annotation.label).where(
                Annotation.source == "queue"
            )
        ).all()
    expected = agreement_report(
        pd.DataFrame(rows, columns=["item", "annotator", "label"])
    ).to_dict()
    for key, value in expected.items():
        assert body[key] == pytest.approx(value, abs=1e-12), key
    assert body["n_items"] == 4 and body["n_annotators"] == 2
    assert body["percent_agreement"] == pytest.approx(0.75)
    assert [row["reason"] for row in body["by_reason"]] == ["random"]
    assert {row["final_label"] for row in body["by_label"]} == {"bug", "none"}
    assert len(body["by_week"]) >= 1 and body["by_week"][0]["week"].count("-W") == 1
    assert [row["guideline_version"] for row in body["by_guideline_version"]] == [
        "none"
    ]
    for name in ("ana", "bo", "rita"):
        for path in ("agreement", "annotators/quality"):
            assert_canonical_error(
                client.get(
                    f"{API}/projects/tickets/{path}", headers=bearer(team[name])
                ),
                403,
                "permission_denied",
            )
    quality = client.get(f"{API}/projects/tickets/annotators/quality", headers=lee)
    assert quality.status_code == 200
    rows = {row["annotator"]: row for row in quality.json()}
    assert set(rows) == {"ana", "bo"}
    assert rows["ana"]["answers"] == 4 and rows["bo"]["answers"] == 4
    # Three agreed items are final (2 votes each); the disputed one is not.
    assert rows["ana"]["compared_with_final"] == 3
    assert rows["ana"]["agreement_with_final"] == 1.0
    assert rows["bo"]["median_seconds_per_item"] == 2.0
    assert rows["ana"]["gold_accuracy"] is None and rows["ana"]["flags"] == 0


def test_empty_project_agreement_is_zeros_and_nulls(client, team):
    body = client.get(
        f"{API}/projects/tickets/agreement", headers=bearer(team["lee"])
    ).json()
    assert body["n_items"] == 0 and body["fleiss_kappa"] is None
    assert body["by_reason"] == []


def test_gold_failure_rule(client, app, world, team):
    """A wrong answer on a gold item is a dispute only while the rule is on."""
    from labelwise.service.store.engine import transaction

    with transaction(app.state.session_factory) as session:
        gold = session.scalar(select(Item).where(Item.external_id == "tickets-11"))
        gold.role, gold.gold_label = "gold", '"bug"'
        session.add(
            Annotation(
                project_id=gold.project_id,
                item_id=gold.id,
                label='"ask"',
                source="queue",
                provenance={"gold_correct": False},
            )
        )
    lee = bearer(team["lee"])
    listed = client.get(f"{API}/projects/tickets/disputes", headers=lee).json()
    assert [d["reasons"] for d in listed["items"]] == [["gold_failed"]]
    client.patch(
        f"{API}/projects/tickets/quality-settings",
        json={"dispute_rules": {"gold_failure": False}},
        headers=lee,
    )
    assert (
        client.get(f"{API}/projects/tickets/disputes", headers=lee).json()["items"]
        == []
    )
    with read_only(app.state.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(FinalLabel)) == 0
