"""Rounds enqueued while items are half answered never over-ask, on SQLite and PG.

Random sequences of claims, submits, skips, undos, waits (leases expire) and
new rounds (random items, overlap targets and rates) run through the queue
use-cases; after every step the store must show:

- no item has more queue answers than the target of its latest entry (an
  item that met its overlap target is not served again);
- an item's latest entry holds all the item's submitted and running leases,
  and every entry's counters equal the leases it holds (a half-answered item
  keeps its remaining need, and a lease in flight counts where its end or
  undo will be booked);
- an item has at most one open entry, and no member answers an item twice.

Four items and four members keep the items crowded, so rounds often pick
items that are half answered, fully answered or held.
"""

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from test_service import add_round, policy, setup

from labelwise.exceptions import ConflictError
from labelwise.service.queue import (
    ClaimResult,
    claim_next,
    enqueue_round,
    skip_lease,
    submit_annotation,
    undo_last,
)
from labelwise.service.store.engine import transaction
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Lease,
    Member,
    Project,
    QueueEntry,
    Round,
    Selection,
)

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
TTL = 600
N_ITEMS = 4
MEMBERS = ("ann", "bob", "cid", "dan")
LABELS = ("spam", "ham")


def _world(factory) -> tuple[int, list[int], list[int]]:
    """Project p (labels spam, ham), its first N_ITEMS pool items, its members."""
    project_id, members = setup(
        factory, ["random"] * N_ITEMS, members=MEMBERS, enqueue=False
    )
    with transaction(factory) as session:
        item_ids = session.scalars(
            select(Item.id)
            .where(Item.project_id == project_id, Item.role == "pool")
            .order_by(Item.id)
            .limit(N_ITEMS)
        ).all()
    return project_id, list(item_ids), [members[name] for name in MEMBERS]


def _clear(factory) -> None:
    with transaction(factory) as session:
        for table in (Annotation, FinalLabel, Lease, QueueEntry, Selection, Round):
            session.execute(delete(table))


def _new_round(session, project_id, picks, overlap_k, overlap_rate, seed) -> None:
    spec = policy(overlap_k=overlap_k, overlap_rate=overlap_rate)
    row = add_round(
        session, project_id, ["random"] * len(picks), spec=spec, seed=seed, ids=picks
    )
    enqueue_round(session=session, round=row)


def _held_lease(session, member_id, now) -> int | None:
    return session.scalar(
        select(Lease.id)
        .where(
            Lease.member_id == member_id,
            Lease.status == "active",
            Lease.expires_at > now,
        )
        .order_by(Lease.id)
        .limit(1)
    )


def _step(session, project_id, item_ids, member_ids, op, now) -> None:
    kind, who, arg = op
    project = session.get(Project, project_id)
    member = session.get(Member, member_ids[who])
    if kind == "round":
        picks, overlap_k, overlap_rate, seed = arg
        chosen = [item_ids[i] for i in dict.fromkeys(picks)]
        if chosen:
            _new_round(session, project_id, chosen, overlap_k, overlap_rate, seed)
    elif kind in ("claim", "answer"):
        got = claim_next(
            session=session,
            project=project,
            member=member,
            now=now,
            ttl_seconds=TTL,
            rng=0,
        )
        if kind == "answer" and isinstance(got, ClaimResult):
            submit_annotation(
                session=session,
                lease_id=got.lease_id,
                member=member,
                label=LABELS[arg],
                now=now,
            )
    elif kind == "undo":
        try:
            undo_last(session=session, project=project, member=member, now=now)
        except ConflictError:  # nothing to undo
            pass
    elif (lease_id := _held_lease(session, member.id, now)) is not None:
        if kind == "submit":
            submit_annotation(
                session=session,
                lease_id=lease_id,
                member=member,
                label=LABELS[arg],
                now=now,
            )
        else:
            skip_lease(session=session, lease_id=lease_id, member=member, now=now)


def _check(session) -> None:
    entries = session.execute(
        select(
            QueueEntry.id,
            QueueEntry.item_id,
            QueueEntry.target,
            QueueEntry.active,
            QueueEntry.done,
            QueueEntry.status,
        ).order_by(QueueEntry.id)
    ).all()
    latest = {row.item_id: row for row in entries}
    open_per_item = Counter(row.item_id for row in entries if row.status == "open")
    assert max(open_per_item.values(), default=0) <= 1, open_per_item
    leases = session.execute(
        select(Lease.item_id, Lease.queue_entry_id, Lease.status).where(
            Lease.queue_entry_id.is_not(None)
        )
    ).all()
    held = Counter((entry_id, status) for _, entry_id, status in leases)
    for row in entries:  # the counters of every entry equal the leases it holds
        assert (row.active, row.done) == (
            held[(row.id, "active")],
            held[(row.id, "submitted")],
        ), row
    running: dict[int, Counter[str]] = defaultdict(Counter)
    for item_id, entry_id, status in leases:
        if status in ("active", "submitted"):
            assert entry_id == latest[item_id].id, (item_id, entry_id)
            running[item_id][status] += 1
    answers = Counter(
        session.scalars(select(Annotation.item_id).where(Annotation.source == "queue"))
    )
    for item_id, entry in latest.items():
        assert answers[item_id] <= entry.target, (item_id, answers[item_id], entry)
        assert entry.done == answers[item_id] == running[item_id]["submitted"], entry
        assert entry.active == running[item_id]["active"], entry
        assert entry.done + entry.active <= entry.target, entry
    pairs = Counter(
        session.execute(select(Annotation.item_id, Annotation.member_id)).all()
    )
    assert max(pairs.values(), default=0) <= 1, pairs


who = st.integers(0, len(MEMBERS) - 1)
label = st.integers(0, len(LABELS) - 1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), who, label),  # claim, then submit
        st.tuples(st.just("answer"), who, label),
        st.tuples(st.just("claim"), who, st.none()),
        st.tuples(st.just("submit"), who, label),
        st.tuples(st.just("skip"), who, st.none()),
        st.tuples(st.just("undo"), who, st.none()),
        # minutes: short waits keep leases, long ones let them expire
        st.tuples(st.just("wait"), st.just(0), st.sampled_from((1, 4, 11))),
        st.tuples(
            st.just("round"),
            st.just(0),
            st.tuples(
                st.lists(st.integers(0, N_ITEMS - 1), min_size=1, max_size=N_ITEMS),
                st.integers(1, 3),
                st.sampled_from((0.0, 0.5, 1.0)),
                st.integers(0, 99),
            ),
        ),
    ),
    min_size=4,
    max_size=40,
)


def test_rounds_never_over_ask_or_lose_answers(session_factory):
    project_id, item_ids, member_ids = _world(session_factory)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(ops=operations)
    def check(ops):
        _clear(session_factory)
        now = NOW
        with transaction(session_factory) as session:
            _new_round(session, project_id, item_ids, 2, 1.0, 0)
        for op in ops:
            if op[0] == "wait":
                now += timedelta(minutes=op[2])
                continue
            with transaction(session_factory) as session:
                _step(session, project_id, item_ids, member_ids, op, now)
            with transaction(session_factory) as session:
                _check(session)

    check()
