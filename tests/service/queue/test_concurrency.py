"""20 threads claiming, or replaying one submit, at once: SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text, update

from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.queue import claim_next, enqueue_round, submit_annotation
from labelwise.service.store.engine import (
    make_engine,
    make_sessionmaker,
    transaction,
)
from labelwise.service.store.schema import (
    Annotation,
    Item,
    Lease,
    Member,
    Project,
    ProjectMember,
    QueueEntry,
    Round,
    Selection,
)

N_THREADS = 20
N_ITEMS = 40
NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
TTL = 3600


@pytest.fixture
def factory(store_url):
    """Sessions from one engine whose pool serves every thread at once."""
    engine = make_engine(store_url, pool_size=N_THREADS + 2, max_overflow=0)
    yield make_sessionmaker(engine)
    engine.dispose()


def setup_queue(factory, *, overlap_rate: float) -> tuple[int, list[int]]:
    """A project with N_ITEMS queued items (some needing 3 annotators), 20 members."""
    spec = BatchPolicy(
        components=(),
        random_fraction=1.0,
        caps=CapRule(min_normal_share=0.0),
        overlap_k=3,
        overlap_rate=overlap_rate,
        gold_rate=0.0,
    )
    with transaction(factory) as session:
        project = Project(
            name="busy", labels=["a", "b"], text_field="text", fields=[], settings={}
        )
        session.add(project)
        session.flush()
        item_ids = session.scalars(
            insert(Item).returning(Item.id),
            [
                {
                    "project_id": project.id,
                    "external_id": f"i{n}",
                    "role": "pool",
                    "fields": {"text": f"t{n}"},
                    "content_hash": f"h{n}",
                    "source": {},
                }
                for n in range(N_ITEMS)
            ],
        ).all()
        row = Round(
            project_id=project.id,
            number=1,
            policy_version=spec.version,
            policy=spec.to_dict(),
            seed=7,
            batch_size=N_ITEMS,
        )
        session.add(row)
        session.flush()
        session.execute(
            insert(Selection),
            [
                {
                    "round_id": row.id,
                    "item_id": item_id,
                    "reason": "random",
                    "strategy": "random",
                    "rank": rank,
                }
                for rank, item_id in enumerate(item_ids, start=1)
            ],
        )
        assert enqueue_round(session=session, round=row) == N_ITEMS
        members = [Member(name=f"m{n}", role="annotator") for n in range(N_THREADS)]
        session.add_all(members)
        session.flush()
        session.add_all(
            ProjectMember(project_id=project.id, member_id=m.id) for m in members
        )
    return project.id, [m.id for m in members]


def run_threads(target, n: int = N_THREADS) -> None:
    """Run ``target(i)`` in n threads released together; re-raise the first error."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_concurrent_claims_never_overfill_an_item(factory):
    project_id, member_ids = setup_queue(factory, overlap_rate=0.5)
    claims: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        member_id = member_ids[i]
        while True:
            with transaction(factory) as session:
                result = claim_next(
                    session=session,
                    project=session.get(Project, project_id),
                    member=session.get(Member, member_id),
                    now=NOW,
                    ttl_seconds=TTL,
                    rng=i,
                )
            if not result:
                assert result.reason == "exhausted"
                return
            with lock:
                claims.append((result.item_id, member_id))
            with transaction(factory) as session:
                submit_annotation(
                    session=session,
                    lease_id=result.lease_id,
                    member=session.get(Member, member_id),
                    label="a" if i % 2 else "b",
                    now=NOW,
                )

    run_threads(work)

    with transaction(factory) as session:
        targets = dict(
            session.execute(select(QueueEntry.item_id, QueueEntry.target)).all()
        )
        counts = session.execute(
            select(QueueEntry.item_id, QueueEntry.active, QueueEntry.done)
        ).all()
        held = Counter(
            item_id
            for (item_id,) in session.execute(
                select(Lease.item_id).where(Lease.status.in_(["active", "submitted"]))
            )
        )
        n_annotations = session.scalar(select(func.count(Annotation.id)))
    assert sorted(targets.values()).count(3) == N_ITEMS // 2
    assert len(claims) == len(set(claims)), "a member got an item twice"
    per_item = Counter(item_id for item_id, _ in claims)
    assert all(per_item[item] <= targets[item] for item in targets)
    assert per_item == Counter(targets)  # every item got exactly its target
    for item_id, active, done in counts:
        assert active + done == held[item_id]
        assert (active, done) == (0, targets[item_id])
    assert len(claims) == sum(targets.values()) == n_annotations


def test_concurrent_replays_of_one_submit_save_one_annotation(factory):
    project_id, member_ids = setup_queue(factory, overlap_rate=0.0)
    member_id = member_ids[0]
    with transaction(factory) as session:
        claimed = claim_next(
            session=session,
            project=session.get(Project, project_id),
            member=session.get(Member, member_id),
            now=NOW,
            ttl_seconds=TTL,
        )
    answers: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def replay(_: int) -> None:
        with transaction(factory) as session:
            annotation, created = submit_annotation(
                session=session,
                lease_id=claimed.lease_id,
                member=session.get(Member, member_id),
                label="a",
                idempotency_key="retry-me",
                now=NOW,
            )
        with lock:
            answers.append((annotation.id, created))

    run_threads(replay)

    assert len(answers) == N_THREADS
    assert len({annotation_id for annotation_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    with transaction(factory) as session:
        assert session.scalar(select(func.count(Annotation.id))) == 1
        entry = session.execute(
            select(QueueEntry.active, QueueEntry.done).where(
                QueueEntry.item_id == claimed.item_id
            )
        ).one()
    assert tuple(entry) == (0, 1)


# ------------------------------------------------ PostgreSQL: entries being claimed


def _claim(factory, project_id: int, member_id: int):
    with transaction(factory) as session:
        return claim_next(
            session=session,
            project=session.get(Project, project_id),
            member=session.get(Member, member_id),
            now=NOW,
            ttl_seconds=TTL,
        )


def _lock_entry_of_rank(factory, project_id: int, rank: int):
    """An open transaction holding the row lock of the entry at ``rank`` (as a
    claim in flight does between its UPDATE and its COMMIT); roll it back."""
    session = factory()
    session.begin()
    session.execute(
        select(QueueEntry.id)
        .where(QueueEntry.project_id == project_id, QueueEntry.rank == rank)
        .with_for_update()
    ).one()
    return session


def _lock_waiters(factory) -> int:
    with transaction(factory) as session:
        return session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def test_a_claim_passes_over_an_entry_another_claim_is_taking(factory, store_url):
    """PostgreSQL: the rank-1 entry is locked by a claim in flight; the next
    claim takes rank 2 at once instead of waiting (FOR UPDATE SKIP LOCKED)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite runs one write transaction at a time")
    project_id, member_ids = setup_queue(factory, overlap_rate=0.0)
    holder = _lock_entry_of_rank(factory, project_id, 1)
    try:
        with transaction(factory) as session:
            # Waiting for the lock would fail this test instead of hanging it.
            session.execute(text("SET LOCAL lock_timeout = '5s'"))
            got = claim_next(
                session=session,
                project=session.get(Project, project_id),
                member=session.get(Member, member_ids[0]),
                now=NOW,
                ttl_seconds=TTL,
            )
    finally:
        holder.rollback()
        holder.close()
    assert got and got.external_id == "i1"
    # The passed-over entry is the next claim's.
    assert _claim(factory, project_id, member_ids[1]).external_id == "i0"


def test_a_claim_waits_when_every_entry_it_could_take_is_being_claimed(
    factory, store_url
):
    """PostgreSQL: the one open entry is locked by a claim that then fails;
    the next claim waits for it and gets it, never a false "exhausted"."""
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite runs one write transaction at a time")
    project_id, member_ids = setup_queue(factory, overlap_rate=0.0)
    with transaction(factory) as session:  # all but the rank-1 entry are done
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.project_id == project_id, QueueEntry.rank > 1)
            .values(done=QueueEntry.target)
        )
    holder = _lock_entry_of_rank(factory, project_id, 1)
    results = []
    waiter = threading.Thread(
        target=lambda: results.append(_claim(factory, project_id, member_ids[0]))
    )
    waiter.start()
    try:
        for _ in range(600):  # until the claim waits on the lock (at most ~60 s)
            if _lock_waiters(factory):
                break
            waiter.join(timeout=0.1)
        assert _lock_waiters(factory) == 1, "the claim did not wait for the entry"
    finally:
        holder.rollback()
        holder.close()
        waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert results and results[0] and results[0].external_id == "i0"
