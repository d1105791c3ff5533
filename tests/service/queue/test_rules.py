"""The pure queue rules: unit cases with their messages, and hypothesis invariants."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labelwise.service.queue as queue
from labelwise.exceptions import (
    CapReached,
    ConfigError,
    ConflictError,
    InvalidInputError,
    LeaseExpired,
    PermissionDenied,
    PoolExhausted,
)
from labelwise.policy import CapRule
from labelwise.service.queue import (
    Assignment,
    Candidate,
    CapState,
    GoldMix,
    Lease,
    NoAssignment,
    Route,
    allowed_kinds,
    calibration_items,
    cap_state,
    choose_next,
    disagreement,
    expired_leases,
    is_expired,
    is_hard,
    needs_more,
    new_lease_expiry,
    overlap_count,
    overlap_targets,
    pick_gold,
    record_assignment,
    renew,
    route_item,
    should_serve_gold,
    skip,
    submit,
)
from labelwise.service.queue.rules import DEFAULT_WINDOW, GOLD_REASON

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)  # a Wednesday
OPEN_CAPS = CapRule(max_hard_per_day=None, min_normal_share=0.0)
HARD = sorted(CapRule.HARD_REASONS)
NORMAL = ["random", "diverse", "bucket", GOLD_REASON]
REASONS = st.sampled_from(HARD + NORMAL)
SHARES = st.sampled_from([0.0, 0.1, 0.2, 0.25, 1 / 3, 0.5, 0.7, 1.0]) | st.floats(0, 1)
CAPS = st.builds(
    CapRule,
    max_hard_per_day=st.none() | st.integers(0, 8),
    min_normal_share=SHARES,
    weekly_reset=st.booleans(),
)
SLOW = settings(max_examples=120, deadline=None)


def _choose(cands, member_id=1, seen=(), state=None, caps=OPEN_CAPS, **kw):
    return choose_next(
        cands,
        member_id=member_id,
        seen_item_ids=set(seen),
        state=state or CapState(),
        caps=caps,
        now=kw.pop("now", NOW),
        rng=kw.pop("rng", 0),
        **kw,
    )


# ----------------------------------------------------------------------- public API


def test_all_is_sorted_and_complete():
    assert queue.__all__ == sorted(queue.__all__)
    assert all(hasattr(queue, name) for name in queue.__all__)
    public = {
        n
        for n, v in vars(queue).items()
        if not n.startswith("_")
        and getattr(v, "__module__", "").startswith("labelwise.service.queue")
    }
    assert public <= set(queue.__all__)
    assert DEFAULT_WINDOW == 200
    assert not is_hard(GOLD_REASON)


def test_rules_import_no_database_or_service_code():
    import ast

    import labelwise.service.queue.rules as rules

    tree = ast.parse(Path(rules.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }
    assert "labelwise.policy" in imported
    assert not {
        m
        for m in imported
        if m.split(".")[0] in {"sqlalchemy", "random", "time"}
        or m.startswith(("labelwise.service", "labelwise.cli"))
    }


# --------------------------------------------------------------------------- leases


def _lease(expires_in=60.0, status="active", member_id=1, lease_id=1, item_id=10):
    return Lease(
        lease_id, item_id, member_id, NOW + timedelta(seconds=expires_in), status
    )


def test_new_lease_expiry_adds_the_ttl():
    assert new_lease_expiry(NOW, 90) == NOW + timedelta(seconds=90)
    with pytest.raises(ConfigError, match=r"'ttl_seconds' parameter .* Got 0 instead"):
        new_lease_expiry(NOW, 0)


@pytest.mark.parametrize("bad", [datetime(2026, 3, 25, 12), "2026-03-25", None])
def test_naive_or_missing_now_is_refused(bad):
    with pytest.raises(InvalidInputError, match="timezone-aware datetime") as info:
        is_expired(_lease(), bad)
    assert "datetime.now(timezone.utc)" in str(info.value)


def test_lease_checks_its_fields():
    with pytest.raises(InvalidInputError, match=r"Lease\.expires_at"):
        Lease(1, 2, 3, datetime(2026, 1, 1))
    with pytest.raises(InvalidInputError, match="Got 'done' instead"):
        Lease(1, 2, 3, NOW, "done")  # type: ignore[arg-type]


def test_is_expired_at_the_boundary():
    assert not is_expired(_lease(1), NOW)
    assert is_expired(_lease(0), NOW)
    assert is_expired(_lease(60, "expired"), NOW)
    assert not is_expired(_lease(-60, "submitted"), NOW)


def test_renew_extends_an_active_lease_and_never_shortens_it():
    renewed = renew(_lease(10), NOW, 300)
    assert renewed.expires_at == NOW + timedelta(seconds=300)
    assert renewed.status == "active" and renewed.lease_id == 1
    assert renew(_lease(900), NOW, 300).expires_at == NOW + timedelta(seconds=900)


@pytest.mark.parametrize(
    ("lease", "says"),
    [
        (_lease(-1), "it expired at 2026-03-25T11:59:59+00:00"),
        (_lease(0), "it expired at"),
        (_lease(60, "submitted"), "its status is 'submitted'"),
        (_lease(60, "expired"), "its status is 'expired'"),
    ],
)
def test_renew_refuses_a_dead_lease_with_a_hint_to_claim_again(lease, says):
    with pytest.raises(LeaseExpired) as info:
        renew(lease, NOW, 300)
    assert "Lease 1 on item 10 must be active and unexpired to renew it" in str(
        info.value
    )
    assert says in info.value.message
    assert "Claim a new item" in (info.value.hint or "")


def test_submit_and_skip_check_owner_status_and_expiry():
    assert submit(_lease(), member_id=1, now=NOW).status == "submitted"
    assert skip(_lease(), member_id=1, now=NOW).status == "skipped"
    with pytest.raises(PermissionDenied, match="belongs to member 1; member 2 cannot"):
        submit(_lease(), member_id=2, now=NOW)
    with pytest.raises(ConflictError, match="already submitted") as info:
        submit(_lease(status="submitted"), member_id=1, now=NOW)
    assert not isinstance(info.value, LeaseExpired)
    assert "idempotency key" in (info.value.hint or "")
    with pytest.raises(LeaseExpired, match="to skip it; it expired"):
        skip(_lease(-5), member_id=1, now=NOW)


@given(
    offsets=st.lists(
        st.tuples(
            st.integers(-100, 100),
            st.sampled_from(["active", "expired", "skipped", "submitted"]),
        ),
        max_size=30,
    )
)
def test_expired_leases_are_exactly_the_active_ones_past_expiry(offsets):
    leases = [
        Lease(i, 100 + i, i % 3, NOW + timedelta(seconds=off), status)
        for i, (off, status) in enumerate(offsets)
    ]
    out = expired_leases(leases, NOW)
    expected = [
        lease.lease_id
        for lease in leases
        if lease.status == "active" and lease.expires_at <= NOW
    ]
    assert [lease.lease_id for lease in out] == expected
    assert all(lease.status == "expired" for lease in out)
    assert all(is_expired(lease, NOW) for lease in out)


def test_an_expired_lease_returns_its_item_to_the_queue():
    item = 7
    lease = Lease(1, item, member_id=1, expires_at=NOW + timedelta(seconds=60))
    later = NOW + timedelta(seconds=61)
    cand = Candidate(item, rank=0, reason="uncertain", active_leases=1)
    assert _choose([cand], member_id=2, now=later).reason == "exhausted"
    (gone,) = expired_leases([lease], later)
    active = sum(x.status == "active" for x in [gone])
    cand = Candidate(item, rank=0, reason="uncertain", active_leases=active)
    got = _choose([cand], member_id=2, now=later)
    assert isinstance(got, Assignment) and got.item_id == item
    # ... but not to the member who held it: they were given it already.
    assert _choose([cand], member_id=1, seen=[item], now=later).reason == "exhausted"


# -------------------------------------------------------------------------- overlap


@pytest.mark.parametrize(
    ("n", "rate", "expected"),
    [(0, 0.5, 0), (10, 0.1, 1), (5, 0.1, 1), (4, 0.1, 0), (10, 0.25, 3), (7, 1, 7)],
)
def test_overlap_count_rounds_half_up(n, rate, expected):
    assert overlap_count(n, rate) == expected


def test_overlap_targets_is_reproducible_and_checks_its_parameters():
    ids = list(range(100, 140))
    a = overlap_targets(ids, overlap_k=3, overlap_rate=0.25, rng=7)
    assert a == overlap_targets(ids, overlap_k=3, overlap_rate=0.25, rng=7)
    assert list(a) == ids
    assert Counter(a.values()) == {1: 30, 3: 10}
    draws = {
        tuple(overlap_targets(ids, overlap_k=2, overlap_rate=0.25, rng=s).values())
        for s in range(5)
    }
    assert len(draws) > 1
    with pytest.raises(ConfigError, match=r"'overlap_k' parameter .* Got 0 instead"):
        overlap_targets(ids, overlap_k=0, overlap_rate=0.1, rng=0)
    with pytest.raises(ConfigError, match=r"'overlap_rate' .* \[0, 1\]. Got 1.5"):
        overlap_targets(ids, overlap_k=2, overlap_rate=1.5, rng=0)
    with pytest.raises(InvalidInputError, match=r"distinct\. Got 3 ids of which 1"):
        overlap_targets([1, 2, 1], overlap_k=2, overlap_rate=0.1, rng=0)


def test_needs_more():
    assert needs_more(2, 1, 0)
    assert not needs_more(2, 1, 1)
    assert not needs_more(1, 0, 1)


@SLOW
@given(
    n=st.integers(0, 25),
    k=st.integers(1, 4),
    rate=st.floats(0, 1),
    extra_members=st.integers(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_overlap_items_end_with_exactly_k_distinct_members(
    n, k, rate, extra_members, seed
):
    rng = np.random.default_rng(seed)
    reasons = rng.choice(HARD + NORMAL, size=n)
    targets = overlap_targets(list(range(n)), overlap_k=k, overlap_rate=rate, rng=seed)
    if k > 1:
        assert sum(t == k for t in targets.values()) == overlap_count(n, rate)
    given_to: dict[int, set[int]] = {i: set() for i in range(n)}
    seen: dict[int, set[int]] = {m: set() for m in range(k + extra_members)}
    waiting = sorted(seen)
    while waiting:
        member = waiting[int(rng.integers(len(waiting)))]
        cands = [
            Candidate(i, i, str(reasons[i]), targets[i], done=len(given_to[i]))
            for i in range(n)
        ]
        got = _choose(cands, member, seen[member])
        if not got:
            assert got.reason == "exhausted"
            waiting.remove(member)
            continue
        assert member not in given_to[got.item_id]
        given_to[got.item_id].add(member)
        seen[member].add(got.item_id)
    assert {i: len(ms) for i, ms in given_to.items()} == targets


@SLOW
@given(
    n=st.integers(1, 15),
    n_members=st.integers(2, 4),
    ops=st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=60),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_member_gets_an_item_twice(n, n_members, ops, seed):
    rng = np.random.default_rng(seed)
    targets = [int(t) for t in rng.integers(1, 4, size=n)]
    active = [0] * n
    done = [0] * n
    seen: dict[int, list[int]] = {m: [] for m in range(n_members)}
    for member_draw, submit_now in ops:
        member = member_draw % n_members
        cands = [
            Candidate(i, int(r), "uncertain", targets[i], active[i], done[i])
            for i, r in zip(range(n), rng.permutation(n), strict=True)
        ]
        got = _choose(cands, member, seen[member])
        if got:
            seen[member].append(got.item_id)
            if submit_now:
                done[got.item_id] += 1
            else:
                active[got.item_id] += 1
        for m in seen:
            assert len(seen[m]) == len(set(seen[m]))
        assert all(a + d <= t for a, d, t in zip(active, done, targets, strict=True))


# -------------------------------------------------------------------- leases: flow


@SLOW
@given(
    n=st.integers(1, 8),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["claim", "submit", "skip", "tick"]),
            st.integers(0, 2),
            st.integers(0, 90),
        ),
        max_size=60,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_lease_or_label_is_lost(n, ops, seed):
    ttl = 60
    rng = np.random.default_rng(seed)
    targets = overlap_targets(list(range(n)), overlap_k=2, overlap_rate=0.5, rng=rng)
    now = NOW
    leases: dict[int, Lease] = {}
    submitted = 0
    claims = 0

    def counts(item):
        mine = [x for x in leases.values() if x.item_id == item]
        return (
            sum(x.status == "active" for x in mine),
            sum(x.status == "submitted" for x in mine),
        )

    for op, member, arg in ops:
        before = {i: x.status for i, x in leases.items()}
        if op == "tick":
            now += timedelta(seconds=arg)
        elif op == "claim":
            for gone in expired_leases(leases.values(), now):  # the reaper
                leases[gone.lease_id] = gone
            seen = {x.item_id for x in leases.values() if x.member_id == member}
            cands = [
                Candidate(i, i, "random", targets[i], *counts(i)) for i in range(n)
            ]
            got = _choose(cands, member, seen, now=now)
            if got:
                claims += 1
                lease_id = len(leases)
                leases[lease_id] = Lease(
                    lease_id, got.item_id, member, new_lease_expiry(now, ttl)
                )
        else:
            mine = [x for x in leases.values() if x.member_id == member]
            if not mine:
                continue
            lease = mine[arg % len(mine)]
            alive = lease.status == "active" and lease.expires_at > now
            try:
                leases[lease.lease_id] = (submit if op == "submit" else skip)(
                    lease, member_id=member, now=now
                )
            except LeaseExpired:
                assert not alive and lease.status in ("active", "expired")
            except ConflictError:
                assert lease.status in ("submitted", "skipped")
            else:
                assert alive
                submitted += op == "submit"
        # Conservation: every lease kept, terminal states final, no item over-served.
        assert len(leases) == claims
        for i, status in before.items():
            assert status == "active" or leases[i].status == status
        assert sum(x.status == "submitted" for x in leases.values()) == submitted
        for item, target in targets.items():
            active, done = counts(item)
            assert active + done <= target
    # Once every lease has run out, each unfinished item is back in the queue.
    now += timedelta(seconds=ttl)
    for gone in expired_leases(leases.values(), now):
        leases[gone.lease_id] = gone
    for item, target in targets.items():
        active, done = counts(item)
        assert active == 0
        assert needs_more(target, active, done) == (done < target)


# ----------------------------------------------------------------------------- caps


def test_is_hard_uses_the_cap_rule_reasons():
    assert all(is_hard(r) for r in CapRule.HARD_REASONS)
    assert not any(is_hard(r) for r in NORMAL)
    assert Candidate(1, 0, "failure").kind == "hard"
    assert Candidate(1, 0, "random").kind == "normal"


@pytest.mark.parametrize(
    ("state", "caps", "hard"),
    [
        (CapState(), CapRule(None, 0.0), True),
        (CapState(), CapRule(None, 0.2), False),  # the day starts with a normal item
        (CapState(hard_today=4, normal_today=1), CapRule(None, 0.2), False),
        (CapState(hard_today=3, normal_today=1), CapRule(None, 0.2), True),
        (CapState(hard_today=8, normal_today=1), CapRule(None, 0.1), True),  # 1/10
        (CapState(hard_today=9, normal_today=1), CapRule(None, 0.1), False),  # 1/11
        (CapState(hard_today=2, normal_today=9), CapRule(2, 0.0), False),
        (CapState(hard_today=1, normal_today=9), CapRule(2, 0.0), True),
        (CapState(normal_today=50), CapRule(None, 1.0), False),
        (CapState(normal_today=50), CapRule(0, 0.0), False),
    ],
)
def test_allowed_kinds_cases(state, caps, hard):
    expected = {"hard", "normal"} if hard else {"normal"}
    assert allowed_kinds(state, caps) == expected


def test_a_share_of_one_fifth_gives_one_normal_then_four_hard():
    caps = CapRule(max_hard_per_day=None, min_normal_share=0.2)
    state = CapState()
    kinds = []
    for _ in range(10):
        kind = "hard" if "hard" in allowed_kinds(state, caps) else "normal"
        kinds.append(kind[0])
        state = record_assignment(state, "uncertain" if kind == "hard" else "random")
    assert "".join(kinds) == "nhhhhnhhhh"


def test_choose_next_follows_rank_and_skips_seen_closed_and_capped():
    cands = [
        Candidate(1, 5, "random"),
        Candidate(2, 0, "uncertain"),
        Candidate(3, 1, "uncertain", target=2, active_leases=1, done=1),
        Candidate(4, 2, "failure"),
        Candidate(5, 3, "diverse"),
    ]
    got = _choose(cands, member_id=9, seen=[2])
    assert got == Assignment(4, 9, "failure", "hard", 2, NOW)
    capped = CapRule(max_hard_per_day=0, min_normal_share=0.0)
    assert _choose(cands, seen=[2], caps=capped).item_id == 5
    assert _choose(list(reversed(cands)), seen=[2, 4, 5], caps=capped).item_id == 1


def test_choose_next_says_why_nothing_is_served():
    cands = [Candidate(1, 0, "uncertain"), Candidate(2, 1, "random", done=1)]
    caps = CapRule(max_hard_per_day=3, min_normal_share=0.0)
    got = _choose(cands, member_id=4, state=CapState(hard_today=3), caps=caps)
    assert isinstance(got, NoAssignment) and not got
    assert got.reason == "cap_reached"
    assert "3 of max_hard_per_day=3 hard items today" in got.message
    assert "the 1 open items of the 2 candidates are all hard" in got.message
    assert "00:00 UTC" in got.hint
    assert isinstance(got.as_error(), CapReached)

    got = _choose(cands, member_id=4, caps=CapRule(None, 0.5))
    assert "leave 0 normal of 1 today, below min_normal_share=0.5" in got.message

    got = _choose(cands, member_id=4, seen=[1])
    assert got.reason == "exhausted"
    assert got.message == (
        "No open item for member 4 among 2 candidates: 1 were already given to "
        "this member and 1 have all the annotators they need."
    )
    assert "labelwise round" in got.hint
    assert isinstance(got.as_error(), PoolExhausted)
    assert _choose([]).reason == "exhausted"


@SLOW
@given(
    caps=CAPS,
    windows=st.lists(st.lists(REASONS, max_size=12), min_size=1, max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_caps_are_never_exceeded_over_a_day(caps, windows, seed):
    rng = np.random.default_rng(seed)
    state = CapState()
    events: list[tuple[datetime, str]] = []
    seen: set[int] = set()
    next_id = 0
    for reasons in windows:
        ranks = rng.permutation(len(reasons))
        cands = [
            Candidate(next_id + i, int(r), reason)
            for i, (r, reason) in enumerate(zip(ranks, reasons, strict=True))
        ]
        next_id += len(cands)
        got = _choose(cands, seen=seen, state=state, caps=caps)
        # The lowest-rank candidate of an allowed kind, independently computed.
        hard_ok = (
            caps.max_hard_per_day is None or state.hard_today < caps.max_hard_per_day
        ) and state.normal_today >= caps.min_normal_share * (
            state.total_today + 1
        ) - 1e-9
        ok = sorted((c for c in cands if hard_ok or not is_hard(c.reason)), key=_rank)
        if not ok:
            assert not got
            assert got.reason == ("cap_reached" if cands else "exhausted")
            continue
        assert got.item_id == ok[0].item_id and got.rank == ok[0].rank
        state = record_assignment(state, got.reason)
        seen.add(got.item_id)
        events.append((NOW, got.reason))
        if got.kind == "hard":
            cap = caps.max_hard_per_day
            assert cap is None or state.hard_today <= cap
            share = state.normal_today / state.total_today
            assert share >= caps.min_normal_share - 1e-9
    assert cap_state(events, NOW) == state


def _rank(candidate):
    return candidate.rank


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)


@given(
    offsets=st.lists(st.tuples(st.integers(-30 * 1440, 2 * 1440), REASONS)),
    now_offset=st.integers(0, 7 * 1440),
    week_start=st.integers(0, 6),
    weekly_reset=st.booleans(),
    zone=ZONES,
)
def test_cap_state_counts_the_utc_day_and_week(
    offsets, now_offset, week_start, weekly_reset, zone
):
    now = (NOW + timedelta(minutes=now_offset)).astimezone(zone)
    events = [(now + timedelta(minutes=m), r) for m, r in offsets]

    def week(t):
        return (t.astimezone(UTC) - timedelta(days=week_start)).isocalendar()[:2]

    today = [
        r for t, r in events if t.astimezone(UTC).date() == now.astimezone(UTC).date()
    ]
    if weekly_reset:
        this_week = [r for t, r in events if week(t) == week(now)]
    else:
        this_week = [r for t, r in events if week(t) <= week(now)]
    state = cap_state(events, now, week_start=week_start, weekly_reset=weekly_reset)
    assert state.hard_today == sum(map(is_hard, today))
    assert state.normal_today == len(today) - state.hard_today
    assert state.hard_this_week == sum(map(is_hard, this_week))
    assert state.total_this_week == len(this_week)


def test_weekly_reset_happens_at_monday_midnight_utc():
    monday = datetime(2026, 3, 23, 0, 0, tzinfo=UTC)
    events = [
        (monday - timedelta(minutes=1), "uncertain"),  # Sunday 23:59
        (monday, "uncertain"),
        (monday + timedelta(hours=1), "random"),
    ]
    now = monday + timedelta(hours=2)
    assert cap_state(events, now) == CapState(1, 1, 1, 2)
    assert cap_state(events, now, weekly_reset=False) == CapState(1, 1, 2, 3)
    # A week starting on Sunday keeps the Sunday event in this week.
    assert cap_state(events, now, week_start=6).total_this_week == 3
    # In Kolkata it is already Monday 05:29 at Sunday 23:59 UTC: the day is UTC's.
    kolkata = timezone(timedelta(hours=5, minutes=30))
    assert cap_state(events, now.astimezone(kolkata)) == CapState(1, 1, 1, 2)
    with pytest.raises(ConfigError, match="'week_start' parameter"):
        cap_state(events, now, week_start=7)
    with pytest.raises(InvalidInputError, match="event time must be"):
        cap_state([(datetime(2026, 3, 23), "random")], now)


def test_cap_state_rejects_negative_counts():
    with pytest.raises(InvalidInputError, match="'hard_today' argument of CapState"):
        CapState(hard_today=-1)


# ----------------------------------------------------------------------------- gold


def test_should_serve_gold_forces_and_refuses_at_the_edges():
    assert not should_serve_gold(100, 0, 0.0, rng=0)
    assert should_serve_gold(19, 0, 0.1, rng=0)  # 0.1 * 20 = 2 owed: forced
    middle = {should_serve_gold(0, 0, 0.5, rng=s) for s in range(20)}  # a draw
    assert middle == {True, False}
    assert not should_serve_gold(5, 2, 0.1, rng=0)  # 0.6 - 2 < 0: refused
    assert should_serve_gold(3, 3, 1.0, rng=0)
    with pytest.raises(InvalidInputError, match="gold_served must be at most"):
        should_serve_gold(2, 3, 0.1, rng=0)
    with pytest.raises(ConfigError, match="'gold_rate' parameter"):
        should_serve_gold(2, 0, -0.1, rng=0)


@given(
    rate=st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.5, 1.0]) | st.floats(0, 1),
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_gold_stays_within_one_item_of_the_rate(rate, n, seed):
    rng = np.random.default_rng(seed)
    gold = 0
    picks = []
    for served in range(n):
        serve = should_serve_gold(served, gold, rate, rng)
        picks.append(serve)
        gold += serve
        assert abs(gold - rate * (served + 1)) <= 1 + 1e-9
    again = np.random.default_rng(seed)
    gold = 0
    for served, expected in enumerate(picks):
        serve = should_serve_gold(served, gold, rate, again)
        assert serve == expected
        gold += serve


def test_pick_gold_picks_unseen_items_reproducibly():
    assert pick_gold([1, 2, 3], {1, 2, 3}, rng=0) is None
    assert pick_gold([], set(), rng=0) is None
    assert pick_gold([1, 2, 3], {1, 3}, rng=0) == 2
    picks = [pick_gold(list(range(10)), {0}, rng=s) for s in range(30)]
    assert picks == [pick_gold(list(range(10)), {0}, rng=s) for s in range(30)]
    assert 0 not in picks and len(set(picks)) > 3


@SLOW
@given(rate=st.floats(0, 0.5), n=st.integers(1, 120), seed=st.integers(0, 2**32 - 1))
def test_choose_next_mixes_gold_at_the_rate(rate, n, seed):
    rng = np.random.default_rng(seed)
    golds = tuple(range(1000, 1000 + n))
    cands = [Candidate(i, i, "uncertain") for i in range(n)]
    seen: set[int] = set()
    served = gold = 0
    for _ in range(n):
        mix = GoldMix(golds, rate, served, gold)
        got = _choose(cands, seen=seen, rng=rng, gold=mix)
        assert got
        served += 1
        if got.reason == GOLD_REASON:
            assert got.item_id in golds and got.rank is None and got.kind == "normal"
            gold += 1
        assert got.item_id not in seen
        seen.add(got.item_id)
        assert abs(gold - rate * served) <= 1 + 1e-9


def test_gold_falls_back_to_candidates_when_all_gold_was_seen():
    mix = GoldMix((50,), 1.0, served_count=3, gold_served=3)
    got = _choose([Candidate(1, 0, "random")], seen=[50], gold=mix)
    assert got.item_id == 1


# -------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("votes", "kwargs", "expected"),
    [
        (["a"], {"overlap_target": 2}, Route("wait", None, "waiting")),
        ([], {"overlap_target": 1}, Route("wait", None, "waiting")),
        (["a"], {"overlap_target": 1}, Route("final", "a", "single")),
        (["a", "a"], {"overlap_target": 2}, Route("final", "a", "agreement")),
        (["a", "b"], {"overlap_target": 2}, Route("review", None, "disagreement")),
        (
            ["a", "a"],
            {"overlap_target": 2, "flags": ["unsure"]},
            Route("review", None, "flagged"),
        ),
        (["a"], {"overlap_target": 1, "flags": [""]}, Route("final", "a", "single")),
        (
            ["a"],
            {"overlap_target": 1, "gold_label": "b"},
            Route("review", None, "gold_failed"),
        ),
        (
            ["b"],
            {"overlap_target": 1, "gold_label": "b"},
            Route("final", "b", "single"),
        ),
        (
            ["a", "b"],
            {"overlap_target": 2, "gold_label": "b", "flags": ["x"]},
            Route("review", None, "gold_failed"),
        ),
        (
            ["a", "b"],
            {"overlap_target": 3, "flags": ["x"]},
            Route("wait", None, "waiting"),
        ),
    ],
)
def test_route_item_cases(votes, kwargs, expected):
    assert route_item(votes, **kwargs) == expected


def test_route_item_checks_the_target():
    with pytest.raises(InvalidInputError, match="'overlap_target' argument"):
        route_item(["a"], overlap_target=0)


@given(
    votes=st.lists(st.sampled_from("abc"), max_size=5),
    target=st.integers(1, 4),
    flags=st.lists(st.sampled_from(["", "unsure", "offensive"]), max_size=2),
    gold=st.none() | st.sampled_from("ab"),
)
def test_route_item_invariants(votes, target, flags, gold):
    route = route_item(votes, flags=flags, gold_label=gold, overlap_target=target)
    assert (route.kind == "wait") == (len(votes) < target)
    if route.kind == "final":
        assert set(votes) == {route.label}
        assert not any(flags) and gold in (None, route.label)
    else:
        assert route.label is None


def test_disagreement_and_calibration_items():
    assert disagreement([]) == 0.0
    assert disagreement(["a", "a"]) == 0.0
    assert disagreement(["a", "b", "a", "c"]) == 0.5
    disputes = {1: 0.5, 2: 0.0, 3: 0.25, 4: 0.5, 5: 0.5, 6: 0.1}
    picked = calibration_items(disputes, size=4, rng=3)
    assert set(picked[:3]) == {1, 4, 5} and picked[3] == 3
    assert picked == calibration_items(disputes, size=4, rng=3)
    orders = {tuple(calibration_items(disputes, size=3, rng=s)) for s in range(20)}
    assert len(orders) > 1
    assert calibration_items(disputes, size=30, rng=0)[-1] == 6  # 0.0 is left out
    assert len(calibration_items(disputes, size=30, rng=0)) == 5
    assert calibration_items({}, rng=0) == []
    with pytest.raises(ConfigError, match="'size' parameter of calibration_items"):
        calibration_items(disputes, size=0)


def test_results_are_frozen():
    got = _choose([Candidate(1, 0, "random")])
    with pytest.raises(AttributeError):
        got.item_id = 2  # type: ignore[misc]
    assert math.isclose(CapRule().min_normal_share, 0.2)


@SLOW
@given(
    cands=st.lists(
        st.tuples(
            REASONS,
            st.integers(1, 3),
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        max_size=12,
    ),
    seen=st.sets(st.integers(0, 11), max_size=6),
    hard_today=st.integers(0, 6),
    normal_today=st.integers(0, 6),
    caps=CAPS,
)
def test_ranked_choices_are_what_choose_next_takes_one_after_another(
    cands, seen, hard_today, normal_today, caps
):
    """choose_next takes the first ranked choice; marked full, the next one; and
    it answers NoAssignment exactly when no choice is left."""
    window = [
        Candidate(item_id, 10 * (12 - item_id), reason, t, active_leases=a, done=d)
        for item_id, (reason, t, a, d) in enumerate(cands)
    ]
    state = CapState(hard_today=hard_today, normal_today=normal_today)
    choices = queue.ranked_choices(window, seen_item_ids=seen, state=state, caps=caps)
    assert [c.rank for c in choices] == sorted(c.rank for c in choices)
    for expected in choices:
        got = _choose(window, seen=seen, state=state, caps=caps)
        assert isinstance(got, Assignment) and got.item_id == expected.item_id
        full = expected.target - expected.done
        window = [
            replace(c, active_leases=full) if c.item_id == got.item_id else c
            for c in window
        ]
    assert isinstance(_choose(window, seen=seen, state=state, caps=caps), NoAssignment)
