"""What one claim and one answer cost the database: a bound on their SQL statements.

The queue's hot path (``POST /projects/{p}/next`` and ``POST
/leases/{id}/annotation``) runs prepared statements, one per question: these
tests fail when a change adds a query (a second membership check, a reload of
a row already loaded, a savepoint), on SQLite and on PostgreSQL. Timings live
in ``bench/request_cost.py`` and ``bench/load.py``, never here.
"""

import pytest
from apitools import API, bearer
from sqlalchemy import event

#: Statements of a claim. SQLite: BEGIN IMMEDIATE, token + project +
#: membership, expire, held leases, caps + policy, window, gold items, INSERT
#: lease, UPDATE entry, item, COMMIT. PostgreSQL (every statement a round
#: trip): BEGIN, token + project + membership, the claim state (expire, held,
#: caps, policy, gold, window), the take (UPDATE entry, INSERT lease, item),
#: COMMIT.
MAX_CLAIM = {"sqlite": 11, "postgresql": 5}
#: Statements of an answer. SQLite: BEGIN IMMEDIATE, token + lease + project
#: + membership, item/entry/guideline, INSERT annotation, UPDATE lease, UPDATE
#: entry, votes and flags, final label, COMMIT. PostgreSQL: BEGIN, token +
#: lease + project + membership + gold label, the submit (INSERT annotation,
#: UPDATE lease, UPDATE entry, votes and flags), final label, COMMIT.
MAX_SUBMIT = {"sqlite": 9, "postgresql": 5}


class Statements:
    """The SQL statements (and COMMITs) an engine runs while recording.

    psycopg sends PostgreSQL's BEGIN itself (not through a cursor): it is
    counted at SQLAlchemy's begin event. SQLite's BEGIN IMMEDIATE is a cursor
    statement (labelwise's own begin listener runs it).
    """

    def __init__(self, engine) -> None:
        self.seen: list[str] = []
        self.dialect = engine.dialect.name
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        if self.dialect == "postgresql":
            event.listen(engine, "begin", self._begin)

    def _begin(self, conn) -> None:
        self.seen.append("BEGIN")

    def _statement(self, conn, cursor, statement, params, context, many) -> None:
        self.seen.append(" ".join(statement.split()))

    def _commit(self, conn) -> None:
        self.seen.append("COMMIT")

    def take(self) -> list[str]:
        taken, self.seen = self.seen, []
        return taken


@pytest.fixture
def queue(world, client):
    world.project("tickets", items=30)
    tokens = {
        "lead": world.member("lea", "lead", "tickets"),
        "ana": world.member("ana", "annotator", "tickets"),
        "bo": world.member("bo", "annotator", "tickets"),
    }
    response = client.post(
        f"{API}/projects/tickets/rounds",
        json={"batch_size": 30, "policy": "random", "seed": 7},
        headers=bearer(tokens["lead"]),
    )
    assert response.status_code == 201, response.text
    return tokens


def _pair(client, token, n):
    claimed = client.post(f"{API}/projects/tickets/next", headers=bearer(token))
    assert claimed.status_code == 200, claimed.text
    answered = client.post(
        f"{API}/leases/{claimed.json()['lease_id']}/annotation",
        json={"label": "bug", "idempotency_key": f"{token[:6]}-{n}"},
        headers=bearer(token),
    )
    assert answered.status_code == 201, answered.text


def test_a_claim_and_an_answer_run_a_bounded_number_of_statements(client, app, queue):
    statements = Statements(app.state.engine)
    for n in range(6):  # both annotators, overlap items and final labels included
        for name in ("ana", "bo"):
            statements.take()
            token = queue[name]
            claimed = client.post(f"{API}/projects/tickets/next", headers=bearer(token))
            assert claimed.status_code == 200, claimed.text
            claim = statements.take()
            answered = client.post(
                f"{API}/leases/{claimed.json()['lease_id']}/annotation",
                json={"label": "bug", "idempotency_key": f"{name}-{n}"},
                headers=bearer(token),
            )
            assert answered.status_code == 201, answered.text
            submit = statements.take()
            assert len(claim) <= MAX_CLAIM[statements.dialect], "\n".join(claim)
            assert len(submit) <= MAX_SUBMIT[statements.dialect], "\n".join(submit)
            for run in (claim, submit):
                # No statement twice (no row loaded again), no savepoint.
                assert len(set(run)) == len(run), "\n".join(run)
                assert not [s for s in run if "SAVEPOINT" in s.upper()], run
                assert run[-1] == "COMMIT"


def test_a_replayed_answer_stays_cheap_and_identical(client, app, queue):
    ana = bearer(queue["ana"])
    claimed = client.post(f"{API}/projects/tickets/next", headers=ana).json()
    answer = {"label": "ask", "idempotency_key": "replay-1"}
    path = f"{API}/leases/{claimed['lease_id']}/annotation"
    first = client.post(path, json=answer, headers=ana)
    statements = Statements(app.state.engine)
    again = client.post(path, json=answer, headers=ana)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(statements.take()) <= MAX_SUBMIT[statements.dialect]


def test_the_checks_of_one_request_are_not_reused_by_the_next(client, app, queue):
    """The per-transaction memo of the membership check dies with the transaction:
    a member removed from the project is refused on the very next claim."""
    from sqlalchemy import delete, select

    from labelwise.service.store.engine import transaction
    from labelwise.service.store.schema import Member, ProjectMember

    _pair(client, queue["ana"], 0)
    with transaction(app.state.session_factory) as session:
        ana = session.scalar(select(Member.id).where(Member.name == "ana"))
        session.execute(delete(ProjectMember).where(ProjectMember.member_id == ana))
    refused = client.post(f"{API}/projects/tickets/next", headers=bearer(queue["ana"]))
    assert refused.status_code == 404
