"""The label-queue use-cases end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from labelwise.exceptions import (
    CapReached,
    ConflictError,
    InvalidInputError,
    LeaseExpired,
    NotFoundError,
    PermissionDenied,
)
from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.loop import run_round
from labelwise.service.queue import (
    ClaimResult,
    NoAssignment,
    claim_next,
    enqueue_round,
    expire_leases,
    flag_lease,
    overlap_targets,
    queue_status,
    renew_lease,
    skip_lease,
    submit_annotation,
    undo_last,
)
from labelwise.service.store import add_guideline
from labelwise.service.store.engine import transaction
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
    Selection,
)

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)  # a Wednesday
TTL = 600
OPEN_CAPS = CapRule(min_normal_share=0.0)


def policy(**kwargs) -> BatchPolicy:
    kwargs.setdefault("caps", OPEN_CAPS)
    kwargs.setdefault("overlap_rate", 0.0)
    kwargs.setdefault("gold_rate", 0.0)
    return BatchPolicy(components=(), random_fraction=1.0, **kwargs)


def add_round(session, project_id, reasons, *, spec, seed=0, number=None, ids=None):
    """A round selecting ``ids`` in rank order (by default the project's first pool
    items by id) for ``reasons``."""
    if ids is None:
        ids = session.scalars(
            select(Item.id)
            .where(Item.project_id == project_id, Item.role == "pool")
            .order_by(Item.id)
            .limit(len(reasons))
        ).all()
    if number is None:
        latest = session.scalar(
            select(func.max(Round.number)).where(Round.project_id == project_id)
        )
        number = (latest or 0) + 1
    row = Round(
        project_id=project_id,
        number=number,
        policy_version=spec.version,
        policy=spec.to_dict(),
        seed=seed,
        batch_size=len(reasons),
    )
    session.add(row)
    session.flush()
    if not reasons:
        return row
    session.execute(
        insert(Selection),
        [
            {
                "round_id": row.id,
                "item_id": item_id,
                "reason": reason,
                "strategy": "random",
                "rank": rank,
            }
            for rank, (item_id, reason) in enumerate(
                zip(ids, reasons, strict=True), start=1
            )
        ],
    )
    return row


def setup(
    factory,
    reasons=("random", "random", "random"),
    *,
    spec=None,
    n_gold=0,
    members=("ann", "bob", "cid"),
    enqueue=True,
):
    """Project p (labels spam/ham, guideline v1), pool items, a round, members."""
    spec = spec or policy()
    with transaction(factory) as session:
        project = Project(
            name="p", labels=["spam", "ham"], text_field="text", fields=[], settings={}
        )
        session.add(project)
        session.flush()
        add_guideline(session=session, project=project, text="Spam is unwanted mail.")
        session.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": f"i{n}",
                    "role": "pool",
                    "fields": {"text": f"text {n}"},
                    "content_hash": f"h{n}",
                    "source": {},
                }
                for n in range(len(reasons) + 2)
            ]
            + [
                {
                    "project_id": project.id,
                    "external_id": f"g{n}",
                    "role": "gold",
                    "fields": {"text": f"gold {n}"},
                    "content_hash": f"g{n}",
                    "source": {},
                    "gold_label": json.dumps("spam"),
                }
                for n in range(n_gold)
            ],
        )
        row = add_round(session, project.id, list(reasons), spec=spec)
        if enqueue:
            enqueue_round(session=session, round=row)
        ids = {}
        for name in members:
            member = Member(name=name, role="annotator")
            session.add(member)
            session.flush()
            session.add(ProjectMember(project_id=project.id, member_id=member.id))
            ids[name] = member.id
    return project.id, ids


def claim(factory, pid, mid, *, now=NOW, ttl=TTL, rng=0):
    with transaction(factory) as session:
        return claim_next(
            session=session,
            project=session.get(Project, pid),
            member=session.get(Member, mid),
            now=now,
            ttl_seconds=ttl,
            rng=rng,
        )


def submit(factory, lease_id, mid, label="spam", *, now=NOW, key=None, spent=1200):
    with transaction(factory) as session:
        return submit_annotation(
            session=session,
            lease_id=lease_id,
            member=session.get(Member, mid),
            label=label,
            time_spent_ms=spent,
            idempotency_key=key,
            now=now,
        )


def call(factory, use_case, mid, **kwargs):
    with transaction(factory) as session:
        return use_case(session=session, member=session.get(Member, mid), **kwargs)


def in_project(factory, use_case, pid, mid, **kwargs):
    with transaction(factory) as session:
        member = None if mid is None else session.get(Member, mid)
        return use_case(
            session=session, project=session.get(Project, pid), member=member, **kwargs
        )


def rows(factory, *columns, where=()):
    with transaction(factory) as session:
        return session.execute(select(*columns).where(*where)).all()


def final_labels_of(factory):
    found = rows(
        factory,
        Item.external_id,
        FinalLabel.label,
        FinalLabel.method,
        FinalLabel.n_annotations,
        where=[Item.id == FinalLabel.item_id],
    )
    return {ext: (json.loads(label), method, n) for ext, label, method, n in found}


def entries(factory):
    found = rows(
        factory,
        Item.external_id,
        QueueEntry.target,
        QueueEntry.active,
        QueueEntry.done,
        QueueEntry.status,
        where=[Item.id == QueueEntry.item_id],
    )
    return {ext: tuple(rest) for ext, *rest in found}


# ---------------------------------------------------------------------- use-cases


def test_claim_submit_gives_a_final_label(session_factory):
    pid, members = setup(session_factory)
    ann = members["ann"]
    got = claim(session_factory, pid, ann)
    assert isinstance(got, ClaimResult)
    assert (got.external_id, got.fields, got.reason) == (
        "i0",
        {"text": "text 0"},
        "random",
    )
    assert got.expires_at == NOW + timedelta(seconds=TTL)
    assert entries(session_factory)["i0"] == (1, 1, 0, "open")

    annotation, created = submit(session_factory, got.lease_id, ann, "spam")
    assert created
    assert json.loads(annotation.label) == "spam"
    assert annotation.source == "queue"
    assert annotation.lease_id == got.lease_id
    assert annotation.reason == "random"
    assert annotation.guideline_version == 1
    assert annotation.time_spent_ms == 1200
    assert annotation.round_id is not None
    assert final_labels_of(session_factory) == {"i0": ("spam", "single", 1)}
    assert entries(session_factory)["i0"] == (1, 0, 1, "open")
    [(status, finished)] = rows(session_factory, Lease.status, Lease.finished_at)
    assert (status, finished.replace(tzinfo=UTC)) == ("submitted", NOW)
    assert claim(session_factory, pid, ann).external_id == "i1"


def test_submit_checks_owner_label_and_lease(session_factory):
    pid, members = setup(session_factory)
    got = claim(session_factory, pid, members["ann"])
    with pytest.raises(PermissionDenied, match="belongs to member"):
        submit(session_factory, got.lease_id, members["bob"])
    with pytest.raises(InvalidInputError, match="one of its labels: spam, ham"):
        submit(session_factory, got.lease_id, members["ann"], "eggs")
    with pytest.raises(InvalidInputError, match="time_spent_ms"):
        submit(session_factory, got.lease_id, members["ann"], spent=-1)
    with pytest.raises(NotFoundError, match="No lease with id 999"):
        submit(session_factory, 999, members["ann"])
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        submit(
            session_factory, got.lease_id, members["ann"], now=NOW.replace(tzinfo=None)
        )
    submit(session_factory, got.lease_id, members["ann"])
    with pytest.raises(ConflictError, match="already submitted"):
        submit(session_factory, got.lease_id, members["ann"])
    assert rows(session_factory, func.count(Annotation.id)) == [(1,)]


def test_only_project_members_claim(session_factory):
    pid, _ = setup(session_factory, members=())
    with transaction(session_factory) as session:
        outsider = Member(name="out", role="annotator")
        session.add(outsider)
        session.flush()
        outsider_id = outsider.id
    with pytest.raises(PermissionDenied, match="must belong to project 'p'"):
        claim(session_factory, pid, outsider_id)


def test_enqueue_round_targets_labels_and_supersedes(session_factory):
    spec = policy(overlap_k=3, overlap_rate=0.5)
    pid, members = setup(session_factory, ["random"] * 4, spec=spec, enqueue=False)
    with transaction(session_factory) as session:
        row = session.scalar(select(Round))
        item_ids = session.scalars(
            select(Selection.item_id).order_by(Selection.rank)
        ).all()
        assert enqueue_round(session=session, round=row) == 4
        assert enqueue_round(session=session, round=row) == 0  # idempotent
    expected = overlap_targets(item_ids, overlap_k=3, overlap_rate=0.5, rng=0)
    found = dict(rows(session_factory, QueueEntry.item_id, QueueEntry.target))
    assert found == expected
    assert sorted(expected.values()) == [1, 1, 3, 3]
    ranks = rows(session_factory, QueueEntry.item_id, QueueEntry.rank)
    assert sorted(ranks, key=lambda r: r[1]) == [
        (i, n) for n, i in enumerate(item_ids, 1)
    ]

    held = claim(session_factory, pid, members["ann"])  # holds i0 (rank 1)
    with transaction(session_factory) as session:
        session.add(
            FinalLabel(
                item_id=item_ids[1], project_id=pid, label='"ham"', method="seed"
            )
        )
        second = add_round(session, pid, ["random"] * 4, spec=policy(), seed=1)
        assert enqueue_round(session=session, round=second) == 2  # i2, i3 again
    state = rows(
        session_factory,
        QueueEntry.round_id,
        QueueEntry.item_id,
        QueueEntry.status,
        QueueEntry.active,
    )
    by_round = {(r, i): (s, a) for r, i, s, a in state}
    first_round = row.id
    assert by_round[(first_round, held.item_id)] == ("open", 1)  # a lease keeps it
    assert by_round[(first_round, item_ids[2])] == ("superseded", 0)
    assert (second.id, held.item_id) not in by_round  # still queued: not twice
    assert (second.id, item_ids[1]) not in by_round  # labeled
    assert by_round[(second.id, item_ids[2])] == ("open", 0)


def entries_by_round(factory):
    """(round number, item external id) -> (target, active, done, status)."""
    found = rows(
        factory,
        Round.number,
        Item.external_id,
        QueueEntry.target,
        QueueEntry.active,
        QueueEntry.done,
        QueueEntry.status,
        where=[Item.id == QueueEntry.item_id, Round.id == QueueEntry.round_id],
    )
    return {(number, ext): tuple(rest) for number, ext, *rest in found}


def next_round(factory, pid, n, *, spec, seed=1):
    """A new round selecting the project's first ``n`` pool items, enqueued."""
    with transaction(factory) as session:
        row = add_round(session, pid, ["random"] * n, spec=spec, seed=seed)
        return enqueue_round(session=session, round=row)


def answers_of(factory, external_id):
    found = rows(
        factory,
        Member.name,
        where=[
            Annotation.member_id == Member.id,
            Annotation.item_id == Item.id,
            Item.external_id == external_id,
        ],
    )
    return sorted(name for (name,) in found)


@pytest.mark.parametrize("new_rate", [1.0, 0.0])
def test_a_new_round_carries_a_half_answered_item_over(session_factory, new_rate):
    pid, m = setup(
        session_factory, ["random"], spec=policy(overlap_k=2, overlap_rate=1.0)
    )
    got = claim(session_factory, pid, m["ann"])
    submit(session_factory, got.lease_id, m["ann"], "spam")  # 1 answer of 2
    # The next round picks i0 again, whatever target it would draw for it.
    spec = policy(overlap_k=2, overlap_rate=new_rate)
    assert next_round(session_factory, pid, 1, spec=spec) == 1
    assert entries_by_round(session_factory) == {
        (1, "i0"): (2, 0, 0, "superseded"),  # its answer moved on
        (2, "i0"): (2, 0, 1, "open"),  # with the target
    }
    status = in_project(session_factory, queue_status, pid, None, now=NOW)
    assert (status["open_entries"], status["remaining"]) == (1, 1)
    again = claim(session_factory, pid, m["ann"])  # ann answered i0 already
    assert isinstance(again, NoAssignment) and again.reason == "exhausted"
    second = claim(session_factory, pid, m["bob"])
    assert second.external_id == "i0"
    submit(session_factory, second.lease_id, m["bob"], "spam")
    assert final_labels_of(session_factory) == {"i0": ("spam", "agreement", 2)}
    assert entries_by_round(session_factory)[(2, "i0")] == (2, 0, 2, "open")
    third = claim(session_factory, pid, m["cid"])  # the target is met
    assert isinstance(third, NoAssignment) and third.reason == "exhausted"
    assert answers_of(session_factory, "i0") == ["ann", "bob"]


def test_an_item_that_met_its_target_is_not_queued_again(session_factory):
    pid, m = setup(
        session_factory, ["random"], spec=policy(overlap_k=2, overlap_rate=1.0)
    )
    for name, label in (("ann", "spam"), ("bob", "ham")):
        got = claim(session_factory, pid, m[name])
        submit(session_factory, got.lease_id, m[name], label)
    assert final_labels_of(session_factory) == {}  # disagreement: in review
    spec = policy(overlap_k=3, overlap_rate=1.0)
    assert next_round(session_factory, pid, 2, spec=spec) == 1  # i1 only
    found = entries_by_round(session_factory)
    assert (2, "i0") not in found and found[(2, "i1")] == (3, 0, 0, "open")
    result = claim(session_factory, pid, m["cid"])
    assert result.external_id == "i1"
    assert answers_of(session_factory, "i0") == ["ann", "bob"]


def test_a_lease_in_flight_keeps_its_entry_across_a_round(session_factory):
    pid, m = setup(
        session_factory, ["random"], spec=policy(overlap_k=2, overlap_rate=1.0)
    )
    first = claim(session_factory, pid, m["ann"])
    submit(session_factory, first.lease_id, m["ann"], "spam")
    held = claim(session_factory, pid, m["bob"])  # in flight during the swap
    assert next_round(session_factory, pid, 1, spec=policy()) == 0
    assert entries_by_round(session_factory) == {(1, "i0"): (2, 1, 1, "open")}
    submit(session_factory, held.lease_id, m["bob"], "spam")
    assert final_labels_of(session_factory) == {"i0": ("spam", "agreement", 2)}
    assert entries_by_round(session_factory) == {(1, "i0"): (2, 0, 2, "open")}


def test_an_undo_after_a_round_swap_reopens_the_carried_entry(session_factory):
    pid, m = setup(
        session_factory, ["random"], spec=policy(overlap_k=2, overlap_rate=1.0)
    )
    got = claim(session_factory, pid, m["ann"])
    submit(session_factory, got.lease_id, m["ann"], "spam")
    assert next_round(session_factory, pid, 1, spec=policy()) == 1
    later = NOW + timedelta(seconds=10)
    in_project(session_factory, undo_last, pid, m["ann"], now=later)
    # ann's lease runs again and counts on the entry that now holds the item
    assert entries_by_round(session_factory)[(2, "i0")] == (2, 1, 0, "open")
    assert rows(session_factory, Lease.queue_entry_id, Lease.status) == [
        (
            rows(session_factory, QueueEntry.id, where=[QueueEntry.status == "open"])[
                0
            ][0],
            "active",
        )
    ]
    expired = got.expires_at + timedelta(seconds=1)
    with transaction(session_factory) as session:
        project = session.get(Project, pid)
        assert expire_leases(session=session, project=project, now=expired) == 1
    assert entries_by_round(session_factory)[(2, "i0")] == (2, 0, 0, "open")
    for name in ("bob", "cid"):  # the item still needs its two answers
        result = claim(session_factory, pid, m[name], now=expired)
        submit(session_factory, result.lease_id, m[name], "ham", now=expired)
    assert final_labels_of(session_factory) == {"i0": ("ham", "agreement", 2)}
    assert entries_by_round(session_factory)[(2, "i0")] == (2, 0, 2, "open")


def test_run_round_queues_its_batch(session_factory):
    pid, _ = setup(session_factory, (), enqueue=False)
    with transaction(session_factory) as session:
        session.execute(
            insert(Item),
            [
                {
                    "project_id": pid,
                    "external_id": f"x{n}",
                    "role": "pool",
                    "fields": {"text": f"some words {n} here"},
                    "content_hash": f"x{n}",
                    "source": {},
                }
                for n in range(10)
            ],
        )
    with transaction(session_factory) as session:
        summary = run_round(
            session=session,
            project=session.get(Project, pid),
            batch_size=4,
            policy=policy(),
            seed=5,
        )
    picks = rows(
        session_factory,
        Selection.item_id,
        Selection.rank,
        where=[Selection.round_id == summary.round_id],
    )
    queued = rows(
        session_factory,
        QueueEntry.item_id,
        QueueEntry.rank,
        where=[QueueEntry.round_id == summary.round_id],
    )
    assert sorted(queued) == sorted(picks) and len(picks) == 4


def test_overlap_two_members_agree_or_go_to_review(session_factory):
    spec = policy(overlap_k=2, overlap_rate=1.0)
    pid, m = setup(session_factory, ["random", "random"], spec=spec)
    first_ann = claim(session_factory, pid, m["ann"])
    first_bob = claim(session_factory, pid, m["bob"])
    assert first_ann.external_id == first_bob.external_id == "i0"
    assert entries(session_factory)["i0"] == (2, 2, 0, "open")
    submit(session_factory, first_ann.lease_id, m["ann"], "spam")
    assert final_labels_of(session_factory) == {}  # waiting for the second vote
    submit(session_factory, first_bob.lease_id, m["bob"], "spam")
    assert final_labels_of(session_factory) == {"i0": ("spam", "agreement", 2)}

    second_ann = claim(session_factory, pid, m["ann"])
    second_bob = claim(session_factory, pid, m["bob"])
    assert second_ann.external_id == second_bob.external_id == "i1"
    result = claim(session_factory, pid, m["cid"])
    assert isinstance(result, NoAssignment) and result.reason == "exhausted"
    submit(session_factory, second_ann.lease_id, m["ann"], "spam")
    submit(session_factory, second_bob.lease_id, m["bob"], "ham")
    assert "i1" not in final_labels_of(session_factory)  # disagreement: review
    assert entries(session_factory)["i1"] == (2, 0, 2, "open")


def test_skip_never_returns_the_item_to_the_same_member(session_factory):
    pid, m = setup(session_factory, ["random", "random"])
    got = claim(session_factory, pid, m["ann"])
    lease = call(session_factory, skip_lease, m["ann"], lease_id=got.lease_id, now=NOW)
    assert (lease.status, lease.finished_at is not None) == ("skipped", True)
    assert entries(session_factory)["i0"] == (1, 0, 0, "open")
    assert claim(session_factory, pid, m["ann"]).external_id == "i1"
    result = claim(session_factory, pid, m["ann"])  # holds i1; i0 was skipped
    assert isinstance(result, NoAssignment) and result.reason == "exhausted"
    assert claim(session_factory, pid, m["bob"]).external_id == "i0"
    with pytest.raises(ConflictError, match="already skipped"):
        call(session_factory, skip_lease, m["ann"], lease_id=got.lease_id, now=NOW)


def test_a_member_holding_two_leases_gets_the_oldest_again(session_factory):
    pid, m = setup(session_factory)
    first = claim(session_factory, pid, m["ann"])
    second = claim(session_factory, pid, m["ann"])
    assert first.lease_id != second.lease_id
    again = claim(session_factory, pid, m["ann"], now=NOW + timedelta(seconds=5))
    assert again == first
    assert rows(session_factory, func.count(Lease.id)) == [(2,)]


def test_flag_sends_the_item_to_review(session_factory):
    pid, m = setup(session_factory, ["random"])
    got = claim(session_factory, pid, m["ann"])
    with pytest.raises(InvalidInputError, match="ambiguous, guideline_gap, other"):
        call(
            session_factory,
            flag_lease,
            m["ann"],
            lease_id=got.lease_id,
            flag="x",
            now=NOW,
        )
    lease = call(
        session_factory,
        flag_lease,
        m["ann"],
        lease_id=got.lease_id,
        flag="guideline_gap",
        note="Is a newsletter spam?",
        now=NOW,
    )
    assert (lease.status, lease.flag, lease.note) == (
        "flagged",
        "guideline_gap",
        "Is a newsletter spam?",
    )
    assert entries(session_factory)["i0"] == (1, 0, 0, "open")
    other = claim(session_factory, pid, m["bob"])
    assert other.external_id == "i0"
    submit(session_factory, other.lease_id, m["bob"], "spam")
    assert final_labels_of(session_factory) == {}  # the flag routes it to review
    status = in_project(session_factory, queue_status, pid, None, now=NOW)
    assert status["flagged"] == 1


def test_expired_lease_returns_the_item_and_a_late_submit_fails(session_factory):
    pid, m = setup(session_factory, ["random"])
    got = claim(session_factory, pid, m["ann"])
    at_expiry = got.expires_at
    with pytest.raises(
        LeaseExpired, match=re.escape(f"expired at {at_expiry.isoformat()}")
    ):
        submit(session_factory, got.lease_id, m["ann"], now=at_expiry)
    later = at_expiry + timedelta(seconds=1)
    other = claim(session_factory, pid, m["bob"], now=later)
    assert other.external_id == "i0"
    assert rows(session_factory, Lease.status, where=[Lease.id == got.lease_id]) == [
        ("expired",)
    ]
    assert entries(session_factory)["i0"] == (1, 1, 0, "open")
    with pytest.raises(LeaseExpired) as info:
        submit(session_factory, got.lease_id, m["ann"], now=later)
    assert "POST /api/v1/projects/p/next" in info.value.hint
    result = claim(session_factory, pid, m["ann"], now=later)  # never the same item
    assert isinstance(result, NoAssignment) and result.reason == "exhausted"


def test_expire_leases_is_set_based(session_factory):
    spec = policy(overlap_k=3, overlap_rate=1.0)
    pid, m = setup(session_factory, ["random"], spec=spec)
    for name in ("ann", "bob"):
        claim(session_factory, pid, m[name])
    third = claim(session_factory, pid, m["cid"], ttl=5000)
    assert entries(session_factory)["i0"] == (3, 3, 0, "open")
    with transaction(session_factory) as session:
        project = session.get(Project, pid)
        later = NOW + timedelta(seconds=TTL)
        assert expire_leases(session=session, project=project, now=later) == 2
        assert expire_leases(session=session, project=project, now=later) == 0
    assert entries(session_factory)["i0"] == (3, 1, 0, "open")
    submit(session_factory, third.lease_id, m["cid"], now=NOW + timedelta(seconds=700))


def test_a_claim_expires_every_stale_lease_and_sees_the_room_they_free(
    session_factory,
):
    """The claim's own expiry (one statement on PostgreSQL) frees both stale
    leases of an entry, and the same claim can take the room they left."""
    spec = policy(overlap_k=3, overlap_rate=1.0)
    members = ("ann", "bob", "cid", "dan")
    pid, m = setup(session_factory, ["random"], spec=spec, members=members)
    for name in ("ann", "bob"):
        claim(session_factory, pid, m[name])
    claim(session_factory, pid, m["cid"], ttl=5000)
    later = NOW + timedelta(seconds=TTL)
    got = claim(session_factory, pid, m["dan"], now=later)
    assert isinstance(got, ClaimResult) and got.external_id == "i0"
    assert entries(session_factory)["i0"] == (3, 2, 0, "open")
    statuses = rows(session_factory, Lease.member_id, Lease.status)
    assert sorted(status for _, status in statuses) == [
        "active",
        "active",
        "expired",
        "expired",
    ]


def test_taking_an_item_the_member_holds_changes_nothing(session_factory):
    """``_take`` on an item the member already holds (a race between two of
    their own claims) answers "seen" and leaves the entry's count as it was."""
    from labelwise.service.queue.rules import Assignment
    from labelwise.service.queue.service import _take

    spec = policy(overlap_k=2, overlap_rate=1.0)
    pid, m = setup(session_factory, ["random"], spec=spec)
    got = claim(session_factory, pid, m["ann"])
    before = entries(session_factory)["i0"]
    with transaction(session_factory) as session:
        entry_id = session.scalar(select(QueueEntry.id))
        again = Assignment(got.item_id, m["ann"], "random", "normal", 1, NOW)
        outcome = _take(
            session,
            session.get(Project, pid),
            session.get(Member, m["ann"]),
            again,
            entry_id,
            NOW,
            NOW + timedelta(seconds=TTL),
        )
    assert outcome == "seen"
    assert entries(session_factory)["i0"] == before == (2, 1, 0, "open")
    assert rows(session_factory, func.count(Lease.id)) == [(1,)]


def test_renew_extends_and_never_shortens(session_factory):
    pid, m = setup(session_factory)
    got = claim(session_factory, pid, m["ann"])
    renewed = call(
        session_factory,
        renew_lease,
        m["ann"],
        lease_id=got.lease_id,
        now=NOW + timedelta(seconds=300),
        ttl_seconds=TTL,
    )
    assert renewed == NOW + timedelta(seconds=900)
    shorter = call(
        session_factory,
        renew_lease,
        m["ann"],
        lease_id=got.lease_id,
        now=NOW + timedelta(seconds=301),
        ttl_seconds=10,
    )
    assert shorter == renewed
    # the renewed lease outlives the first expiry
    submit(session_factory, got.lease_id, m["ann"], now=NOW + timedelta(seconds=800))
    with pytest.raises(ConflictError, match="already submitted"):
        call(
            session_factory,
            renew_lease,
            m["ann"],
            lease_id=got.lease_id,
            now=NOW,
            ttl_seconds=TTL,
        )
    late = claim(session_factory, pid, m["bob"])
    with pytest.raises(PermissionDenied):
        call(
            session_factory,
            renew_lease,
            m["ann"],
            lease_id=late.lease_id,
            now=NOW,
            ttl_seconds=TTL,
        )
    with pytest.raises(LeaseExpired):
        call(
            session_factory,
            renew_lease,
            m["bob"],
            lease_id=late.lease_id,
            now=NOW + timedelta(seconds=TTL),
            ttl_seconds=TTL,
        )


def test_undo_within_the_lease(session_factory):
    pid, m = setup(session_factory, ["random"])
    with pytest.raises(ConflictError, match="no answer in project 'p' to undo"):
        in_project(session_factory, undo_last, pid, m["ann"], now=NOW)
    got = claim(session_factory, pid, m["ann"])
    saved, _ = submit(session_factory, got.lease_id, m["ann"], "spam", key="k-1")
    assert final_labels_of(session_factory) == {"i0": ("spam", "single", 1)}

    undone = in_project(
        session_factory, undo_last, pid, m["ann"], now=NOW + timedelta(seconds=10)
    )
    assert (undone.id, json.loads(undone.label)) == (saved.id, "spam")
    assert rows(session_factory, func.count(Annotation.id)) == [(0,)]
    assert rows(session_factory, Lease.status, Lease.finished_at) == [("active", None)]
    assert entries(session_factory)["i0"] == (1, 1, 0, "open")
    assert final_labels_of(session_factory) == {}

    again, created = submit(session_factory, got.lease_id, m["ann"], "ham", key="k-2")
    assert created and json.loads(again.label) == "ham"
    assert final_labels_of(session_factory) == {"i0": ("ham", "single", 1)}
    with pytest.raises(ConflictError, match="undo") as info:
        in_project(session_factory, undo_last, pid, m["ann"], now=got.expires_at)
    assert "Nothing was changed" in info.value.hint
    assert final_labels_of(session_factory) == {"i0": ("ham", "single", 1)}


def test_idempotent_submit_returns_the_same_annotation(session_factory):
    pid, m = setup(session_factory)
    got = claim(session_factory, pid, m["ann"])
    first, created = submit(session_factory, got.lease_id, m["ann"], key="same")
    replay, again = submit(session_factory, got.lease_id, m["ann"], key="same")
    assert (created, again) == (True, False)
    assert replay.id == first.id
    assert rows(session_factory, func.count(Annotation.id)) == [(1,)]
    assert entries(session_factory)["i0"] == (1, 0, 1, "open")
    with pytest.raises(ConflictError, match="Idempotency key 'same' was already used"):
        submit(session_factory, got.lease_id, m["bob"], key="same")
    other = claim(session_factory, pid, m["ann"])
    with pytest.raises(ConflictError, match="this submit is for lease"):
        submit(session_factory, other.lease_id, m["ann"], key="same")
    with pytest.raises(InvalidInputError, match="idempotency key"):
        submit(session_factory, other.lease_id, m["ann"], key="")


def test_caps_limit_hard_items_per_day(session_factory):
    spec = policy(caps=CapRule(max_hard_per_day=2, min_normal_share=0.0))
    reasons = ["uncertain"] * 4 + ["random"] * 2
    pid, m = setup(session_factory, reasons, spec=spec)
    got = []
    for _ in range(6):
        result = claim(session_factory, pid, m["ann"])
        if not result:
            break
        got.append((result.external_id, result.reason))
        submit(session_factory, result.lease_id, m["ann"])
    assert got == [
        ("i0", "uncertain"),
        ("i1", "uncertain"),
        ("i4", "random"),
        ("i5", "random"),
    ]
    assert isinstance(result, NoAssignment) and result.reason == "cap_reached"
    assert isinstance(result.as_error(), CapReached)
    status = in_project(session_factory, queue_status, pid, m["ann"], now=NOW)
    assert status["member"]["caps"]["hard_today"] == 2
    assert status["member"]["caps"]["hard_allowed"] is False
    assert status["member"]["done_today"] == 4
    assert status["open_entries"] == 2
    # the next day the cap restarts
    tomorrow = claim(session_factory, pid, m["ann"], now=NOW + timedelta(days=1))
    assert tomorrow.external_id == "i2"


def test_gold_items_are_mixed_in_and_checked(session_factory):
    spec = policy(gold_rate=0.5)
    pid, m = setup(session_factory, ["random"] * 6, spec=spec, n_gold=5)
    reasons, checks = [], []
    for step in range(8):
        result = claim(session_factory, pid, m["ann"], rng=step)
        assert result, result
        reasons.append(result.reason)
        # while unseen gold remains, gold stays within 1 of gold_rate * served
        assert abs(reasons.count("gold") - 0.5 * len(reasons)) <= 1
        label = "ham" if result.reason == "gold" and not checks else "spam"
        annotation, _ = submit(session_factory, result.lease_id, m["ann"], label)
        if result.reason == "gold":
            assert result.external_id.startswith("g")
            assert annotation.round_id is None
            checks.append(annotation.provenance["gold_correct"])
        else:
            assert annotation.provenance == {}
    assert 3 <= len(checks) <= 5
    assert checks == [False] + [True] * (len(checks) - 1)
    gold_leases = rows(
        session_factory, Lease.queue_entry_id, where=[Lease.reason == "gold"]
    )
    assert gold_leases == [(None,)] * len(checks)
    labeled = final_labels_of(session_factory)
    assert len(labeled) == 8 - len(checks)
    assert all(ext.startswith("i") for ext in labeled)


def test_queue_status_counts(session_factory):
    spec = policy(overlap_k=2, overlap_rate=1.0)
    pid, m = setup(session_factory, ["random", "random"], spec=spec)
    got = claim(session_factory, pid, m["ann"])
    submit(session_factory, got.lease_id, m["ann"])
    claim(session_factory, pid, m["bob"])
    status = in_project(session_factory, queue_status, pid, m["ann"], now=NOW)
    assert {k: status[k] for k in ("open_entries", "remaining", "active_leases")} == {
        "open_entries": 1,
        "remaining": 2,
        "active_leases": 1,
    }
    assert status["done_today"] == 1
    mine = status["member"]
    assert (mine["active_leases"], mine["done_today"]) == (0, 1)
    assert mine["caps"]["max_hard_per_day"] is None
    assert mine["caps"]["hard_allowed"] is True
