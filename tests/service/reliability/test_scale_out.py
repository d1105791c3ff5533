"""Two ``labelwise serve`` processes on one PostgreSQL database share one queue.

Eight annotators: each claims on one server and answers on the other (even
annotators claim on A, odd on B), until the queue has nothing left for them.
Half of the 60 items need three annotators, every third item is "hard" and
each annotator may take at most 3 hard items a day, with normal items at
least half of their day. Neither process may hold state the other needs:
afterwards no item has more leases or answers than its overlap target, no
member got an item twice, the caps held across both processes, the queue's
counters equal its leases, and every acknowledged answer is in the database
once. A submit replayed on the other process returns the saved answer.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import httpx
import pytest
from apitools import truncate_postgres
from crash import (
    API,
    PROJECT,
    ServeProcess,
    Traffic,
    _guarded,
    annotate,
    check_database,
    prepare_database,
    queue_policy,
    serve_env,
)
from sqlalchemy import select

from labelwise.policy import CapRule
from labelwise.service.store.engine import make_engine, make_sessionmaker
from labelwise.service.store.schema import Lease, Member, QueueEntry

MAX_HARD = 3
N_ITEMS = 60


async def _storm(a: ServeProcess, b: ServeProcess, tokens: dict[str, str]) -> Traffic:
    traffic, stop = Traffic(), asyncio.Event()
    clients = []
    tasks = []
    for i, (name, token) in enumerate(sorted(tokens.items())):
        home, other = (a, b) if i % 2 == 0 else (b, a)
        headers = {"Authorization": f"Bearer {token}"}
        claim_on = httpx.AsyncClient(base_url=home.base, headers=headers, timeout=30)
        submit_on = httpx.AsyncClient(base_url=other.base, headers=headers, timeout=30)
        clients += [claim_on, submit_on]
        work = annotate(
            claim_on, name, stop, traffic, random.Random(i), submit_client=submit_on
        )
        tasks.append(asyncio.create_task(_guarded(work, traffic, stop)))
    try:
        async with asyncio.timeout(240):
            await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return traffic


async def _replay_across(a: ServeProcess, b: ServeProcess, token: str) -> None:
    """A lease claimed on A, submitted on B, the same key replayed on A."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=a.base, headers=headers) as on_a,
        httpx.AsyncClient(base_url=b.base, headers=headers) as on_b,
    ):
        claim = await on_a.post(f"{API}/projects/{PROJECT}/next")
        assert claim.status_code == 200, claim.text
        path = f"{API}/leases/{claim.json()['lease_id']}/annotation"
        body = {"label": "bug", "idempotency_key": "cross-process-1"}
        first = await on_b.post(path, json=body)
        again = await on_a.post(path, json=body)
        assert (first.status_code, again.status_code) == (201, 200), again.text
        assert first.json()["id"] == again.json()["id"]
        held = await on_b.get(f"{API}/projects/{PROJECT}/queue")
        assert held.status_code == 200


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_share_one_queue(postgres_database, tmp_path):
    url = postgres_database
    truncate_postgres(url)
    policy = queue_policy(
        overlap_k=3,
        overlap_rate=0.5,
        caps=CapRule(max_hard_per_day=MAX_HARD, min_normal_share=0.5),
    )
    tokens = prepare_database(
        url, annotators=8, items=N_ITEMS, policy=policy, hard_every=3
    )
    env = serve_env(ttl_seconds=600)  # one secret for both: nothing else is shared
    a = ServeProcess(url, tmp_path / "a.log", ttl_seconds=600, env=env)
    b = ServeProcess(url, tmp_path / "b.log", ttl_seconds=600, env=env)
    try:
        a.start()
        b.start()
        asyncio.run(a.wait_healthy())
        asyncio.run(b.wait_healthy())
        names = sorted(tokens)
        asyncio.run(_replay_across(a, b, tokens[names[0]]))
        traffic = asyncio.run(_storm(a, b, tokens))
    finally:
        a.stop()
        b.stop()
    assert traffic.unexpected == []
    assert traffic.exhausted == len(tokens)  # everyone ran until nothing was left
    assert len(traffic.acks) > N_ITEMS // 2
    found = check_database(url, traffic.acks, datetime.now(UTC))
    assert found["submits_found"] == len(traffic.acks)
    assert found["duplicates"] == found["overfilled_items"] == 0
    assert found["counter_mismatches"] == found["stale_leases"] == 0

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            targets = dict(
                session.execute(select(QueueEntry.item_id, QueueEntry.target)).all()
            )
            leases = session.execute(
                select(Lease.item_id, Lease.member_id, Lease.reason, Lease.status)
            ).all()
            member_names = dict(session.execute(select(Member.id, Member.name)).all())
    finally:
        engine.dispose()
    assert sorted(Counter(targets.values())) == [1, 3]
    taken = Counter(
        row.item_id for row in leases if row.status in ("active", "submitted")
    )
    assert all(n <= targets[item] for item, n in taken.items())
    assert len({(row.item_id, row.member_id) for row in leases}) == len(leases)
    per_member: dict[str, Counter[str]] = defaultdict(Counter)
    for lease in leases:
        kind = "hard" if lease.reason == "uncertain" else "normal"
        per_member[member_names[lease.member_id]][kind] += 1
    assert any(counts["hard"] == MAX_HARD for counts in per_member.values())
    for name, counts in per_member.items():
        assert counts["hard"] <= MAX_HARD, (name, counts)
        assert counts["normal"] >= counts["hard"], (name, counts)  # share >= 0.5
    # Neither server wrote a token or a password hash to its log.
    logs = a.log_path.read_text() + b.log_path.read_text()
    assert "POST /api/v1/leases/" in logs or "labelwise API" in logs
    assert not any(token in logs for token in tokens.values())
    assert "$argon2" not in logs
