"""Pure label-queue rules: leases, overlap, caps, gold mixing, the next item, routing.

Every function here is a function of counts, ids, a time passed in as ``now``
(timezone-aware, never read from the clock) and an RNG normalised by
:func:`~labelwise._validation.check_rng`. They return frozen dataclasses and
touch no database: ``service/queue/service.py`` loads a bounded window of
state, calls them and writes the result in one transaction. The rules never
see the whole pool, only a window of ranked candidates (about
:data:`DEFAULT_WINDOW`) and per-member counts. ``docs/queue.md`` states every
rule with its formula.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import numpy as np

from labelwise._typing import RandomState
from labelwise._validation import check_int, check_interval, check_rng
from labelwise.exceptions import (
    CapReached,
    ConflictError,
    InvalidInputError,
    LeaseExpired,
    PermissionDenied,
    PoolExhausted,
)
from labelwise.policy import CapRule

__all__ = [
    "Assignment",
    "Candidate",
    "CapState",
    "GoldMix",
    "Kind",
    "Lease",
    "LeaseStatus",
    "NoAssignment",
    "NoAssignmentReason",
    "Route",
    "RouteKind",
    "allowed_kinds",
    "calibration_items",
    "cap_state",
    "cap_windows",
    "choose_next",
    "disagreement",
    "expired_leases",
    "is_expired",
    "is_hard",
    "needs_more",
    "new_lease_expiry",
    "overlap_count",
    "overlap_targets",
    "pick_gold",
    "ranked_choices",
    "record_assignment",
    "renew",
    "route_item",
    "should_serve_gold",
    "skip",
    "submit",
]

# Constants stay out of __all__: sorted() (tests/test_public_api.py) and ruff RUF022
# order UPPER_CASE names differently.
#: Ranked candidates the service loads per claim; the rules never see more.
DEFAULT_WINDOW = 200
#: Reason recorded on a gold (quality-check) item; gold counts as "normal".
GOLD_REASON = "gold"

Kind = Literal["hard", "normal"]
LeaseStatus = Literal["active", "expired", "skipped", "submitted"]
RouteKind = Literal["final", "review", "wait"]
NoAssignmentReason = Literal["cap_reached", "exhausted"]

_LEASE_STATUSES: tuple[str, ...] = get_args(LeaseStatus)
_HARD: Kind = "hard"
_NORMAL: Kind = "normal"
#: Slack for float rounding in the share comparisons (0.1 * 10 > 1.0 in binary).
_EPS = 1e-9
_CLAIM_HINT = "Claim a new item from the queue."


def _check_now(value: object, *, param: str = "now") -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidInputError(
            f"{param} must be a timezone-aware datetime. Got {value!r} instead.",
            hint="Pass datetime.now(timezone.utc); naive datetimes are ambiguous.",
        )
    return value


def _check_count(value: object, *, param: str, owner: str, low: int = 0) -> int:
    if (
        isinstance(value, int | np.integer)
        and not isinstance(value, bool)
        and int(value) >= low
    ):
        return int(value)
    raise InvalidInputError(
        f"The {param!r} argument of {owner} must be an int >= {low}. "
        f"Got {value!r} instead."
    )


# --------------------------------------------------------------------------- leases


@dataclass(frozen=True)
class Lease:
    """One member's temporary hold on one item.

    ``status`` is ``"active"`` while held, then ``"submitted"``, ``"skipped"``
    or ``"expired"``. An active lease whose ``expires_at`` is not after ``now``
    is expired already, even before the store marks it.
    """

    lease_id: int
    item_id: int
    member_id: int
    expires_at: datetime
    status: LeaseStatus = "active"

    def __post_init__(self) -> None:
        _check_now(self.expires_at, param="Lease.expires_at")
        if self.status not in _LEASE_STATUSES:
            raise InvalidInputError(
                f"Lease.status must be one of {', '.join(map(repr, _LEASE_STATUSES))}."
                f" Got {self.status!r} instead."
            )


def new_lease_expiry(now: datetime, ttl_seconds: float) -> datetime:
    """The expiry of a lease claimed at ``now``: ``now + ttl_seconds``."""
    ttl = check_interval(
        ttl_seconds,
        param="ttl_seconds",
        owner="new_lease_expiry",
        low=0,
        closed="right",
    )
    return _check_now(now) + timedelta(seconds=ttl)


def is_expired(lease: Lease, now: datetime) -> bool:
    """Whether ``lease`` is expired: marked so, or active with ``expires_at <= now``."""
    _check_now(now)
    return lease.status == "expired" or (
        lease.status == "active" and lease.expires_at <= now
    )


def expired_leases(leases: Iterable[Lease], now: datetime) -> list[Lease]:
    """The active leases that ran out by ``now``, marked ``"expired"``.

    Their items return to the queue: an expired lease no longer counts towards
    an item's annotators. The store applies this as one conditional UPDATE
    (``status = 'active' AND expires_at <= now``).
    """
    _check_now(now)
    return [
        replace(lease, status="expired")
        for lease in leases
        if lease.status == "active" and lease.expires_at <= now
    ]


def _lease_gone(lease: Lease, now: datetime, action: str) -> LeaseExpired:
    if lease.status == "active":
        state = f"it expired at {lease.expires_at.isoformat()} (now {now.isoformat()})"
    else:
        state = f"its status is {lease.status!r}"
    return LeaseExpired(
        f"Lease {lease.lease_id} on item {lease.item_id} must be active and "
        f"unexpired to {action}; {state}.",
        hint=f"Your work on item {lease.item_id} was not saved. {_CLAIM_HINT}",
    )


def renew(lease: Lease, now: datetime, ttl_seconds: float) -> Lease:
    """Extend an active, unexpired lease to ``max(expires_at, now + ttl_seconds)``.

    Raises
    ------
    LeaseExpired
        When the lease is not active or has expired; the hint says to claim again.
    """
    expiry = new_lease_expiry(now, ttl_seconds)
    if lease.status != "active" or lease.expires_at <= now:
        raise _lease_gone(lease, now, "renew it")
    return replace(lease, expires_at=max(lease.expires_at, expiry))


def _close(lease: Lease, *, member_id: int, now: datetime, to: LeaseStatus) -> Lease:
    _check_now(now)
    verb = "submit" if to == "submitted" else "skip"
    if lease.member_id != member_id:
        raise PermissionDenied(
            f"Lease {lease.lease_id} belongs to member {lease.member_id}; "
            f"member {member_id} cannot {verb} it.",
            hint=f"Only the member holding a lease can {verb} it. {_CLAIM_HINT}",
        )
    if lease.status in ("submitted", "skipped"):
        raise ConflictError(
            f"Lease {lease.lease_id} must be active to {verb} it; it was already "
            f"{lease.status}.",
            hint="Retry a submit with the same idempotency key, or claim a new item.",
        )
    if lease.status != "active" or lease.expires_at <= now:
        raise _lease_gone(lease, now, f"{verb} it")
    return replace(lease, status=to)


def submit(lease: Lease, *, member_id: int, now: datetime) -> Lease:
    """Mark the lease submitted, checking owner, status and expiry.

    Raises
    ------
    PermissionDenied
        When ``member_id`` does not hold the lease.
    ConflictError
        When it was already submitted or skipped.
    LeaseExpired
        When it expired (marked, or ``expires_at <= now``).
    """
    return _close(lease, member_id=member_id, now=now, to="submitted")


def skip(lease: Lease, *, member_id: int, now: datetime) -> Lease:
    """Mark the lease skipped: the item returns to the queue, not to this member.

    Raises the same errors as :func:`submit`.
    """
    return _close(lease, member_id=member_id, now=now, to="skipped")


# -------------------------------------------------------------------------- overlap


def overlap_count(n_items: int, overlap_rate: float) -> int:
    """Items of ``n_items`` that need several annotators: ``floor(rate * n + 0.5)``."""
    n = _check_count(n_items, param="n_items", owner="overlap_count")
    rate = check_interval(
        overlap_rate, param="overlap_rate", owner="overlap_count", low=0, high=1
    )
    return math.floor(rate * n + 0.5)


def overlap_targets(
    item_ids: Sequence[int],
    *,
    overlap_k: int,
    overlap_rate: float,
    rng: RandomState = None,
) -> dict[int, int]:
    """How many distinct annotators each item of a batch needs.

    Parameters
    ----------
    item_ids : sequence of int, length n
        The batch's items (distinct).
    overlap_k : int >= 1
        Annotators an overlap item needs (``BatchPolicy.overlap_k``).
    overlap_rate : float in [0, 1]
        Share of overlap items (``BatchPolicy.overlap_rate``).
    rng : Generator, int or None
        Picks the overlap items; the same seed gives the same targets.

    Returns
    -------
    dict of int to int
        Exactly ``overlap_count(n, overlap_rate)`` items, chosen uniformly, map
        to ``overlap_k``; the others map to 1. Insertion order is ``item_ids``.
    """
    owner = "overlap_targets"
    k = check_int(overlap_k, param="overlap_k", owner=owner, low=1)
    rate = check_interval(
        overlap_rate, param="overlap_rate", owner=owner, low=0, high=1
    )
    generator = check_rng(rng)
    ids = list(item_ids)
    targets = dict.fromkeys(ids, 1)
    if len(targets) != len(ids):
        raise InvalidInputError(
            f"item_ids must be distinct. Got {len(ids)} ids of which "
            f"{len(ids) - len(targets)} repeat.",
            hint="Pass each item of the batch once.",
        )
    n_overlap = overlap_count(len(ids), rate)
    for position in generator.choice(len(ids), size=n_overlap, replace=False):
        targets[ids[int(position)]] = k
    return targets


def needs_more(target: int, active_leases: int, done: int) -> bool:
    """Whether an item is open: ``active_leases + done < target``."""
    return active_leases + done < target


# ----------------------------------------------------------------------------- caps


def is_hard(reason: str) -> bool:
    """Whether items picked for ``reason`` count as hard (``CapRule.HARD_REASONS``)."""
    return reason in CapRule.HARD_REASONS


def _kind(reason: str) -> Kind:
    return _HARD if is_hard(reason) else _NORMAL


@dataclass(frozen=True)
class CapState:
    """A member's assignment counts for the caps.

    ``*_today`` count the current UTC calendar day; ``*_this_week`` the current
    week (or, without a weekly reset, everything counted so far).
    """

    hard_today: int = 0
    normal_today: int = 0
    hard_this_week: int = 0
    total_this_week: int = 0

    def __post_init__(self) -> None:
        for name in ("hard_today", "normal_today", "hard_this_week", "total_this_week"):
            _check_count(getattr(self, name), param=name, owner="CapState")

    @property
    def total_today(self) -> int:
        """Items given today, hard and normal."""
        return self.hard_today + self.normal_today


def _day_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def cap_windows(
    now: datetime, *, week_start: int = 0
) -> tuple[datetime, datetime, datetime, datetime]:
    """The caps' windows at ``now``: ``(day, day_end, week, week_end)``, UTC.

    Today is ``[day, day_end)``, this week ``[week, week_end)`` (see
    :func:`cap_state`); the store counts a member's leases over them in SQL.
    """
    _check_now(now)
    start = check_int(
        week_start, param="week_start", owner="cap_windows", low=0, high=6
    )
    day = _day_start(now)
    week = day - timedelta(days=(day.weekday() - start) % 7)
    return day, day + timedelta(days=1), week, week + timedelta(days=7)


def cap_state(
    events: Iterable[tuple[datetime, str]],
    now: datetime,
    *,
    week_start: int = 0,
    weekly_reset: bool = True,
) -> CapState:
    """Count a member's recent assignments for the caps.

    Parameters
    ----------
    events : iterable of (datetime, str)
        The member's assignments (every lease handed out, whatever became of it)
        as ``(assigned_at, reason)``; gold items have reason ``"gold"``. The
        store loads only those since the start of the week.
    now : datetime, timezone-aware
        The current time.
    week_start : int in [0, 6], default=0
        Weekday the week starts on, at 00:00 UTC (0 is Monday).
    weekly_reset : bool, default=True
        ``CapRule.weekly_reset``. When False the weekly counters count every
        event before the end of the current week.

    Returns
    -------
    CapState
        Today is ``[00:00 UTC, +1 day)`` of ``now``'s UTC date; this week is
        ``[week start, +7 days)``. Events outside those windows are ignored.
    """
    _check_now(now)
    start = check_int(week_start, param="week_start", owner="cap_state", low=0, high=6)
    day, day_end, week, week_end = cap_windows(now, week_start=start)
    hard_today = normal_today = hard_week = total_week = 0
    for at, reason in events:
        _check_now(at, param="event time")
        hard = is_hard(reason)
        if day <= at < day_end:
            hard_today += hard
            normal_today += not hard
        if at < week_end and (not weekly_reset or week <= at):
            hard_week += hard
            total_week += 1
    return CapState(hard_today, normal_today, hard_week, total_week)


def record_assignment(state: CapState, reason: str) -> CapState:
    """``state`` after one more item picked for ``reason`` within the same day."""
    hard = is_hard(reason)
    return CapState(
        hard_today=state.hard_today + hard,
        normal_today=state.normal_today + (not hard),
        hard_this_week=state.hard_this_week + hard,
        total_this_week=state.total_this_week + 1,
    )


def _hard_blockers(state: CapState, caps: CapRule) -> list[str]:
    blockers = []
    cap = caps.max_hard_per_day
    if cap is not None and state.hard_today >= cap:
        blockers.append(
            f"{state.hard_today} of max_hard_per_day={cap} hard items today"
        )
    share = caps.min_normal_share
    if state.normal_today < share * (state.total_today + 1) - _EPS:
        blockers.append(
            f"one more hard item would leave {state.normal_today} normal of "
            f"{state.total_today + 1} today, below min_normal_share={share:g}"
        )
    return blockers


def allowed_kinds(state: CapState, caps: CapRule) -> frozenset[Kind]:
    """The kinds of item the caps allow next: ``"normal"`` always, ``"hard"`` maybe.

    A hard item is allowed iff both hold, with ``h``, ``m`` and ``t = h + m``
    today's hard, normal and total counts:

    - ``caps.max_hard_per_day`` is None or ``h < max_hard_per_day``;
    - ``m >= min_normal_share * (t + 1)``, i.e. counting the hard item itself,
      normal items stay at least ``min_normal_share`` of today's items.

    So with a positive share the day starts with a normal item, and
    ``min_normal_share = 1`` allows no hard item. Always satisfiable: normal
    items are always allowed and each raises the share.
    """
    if _hard_blockers(state, caps):
        return frozenset({_NORMAL})
    return frozenset({_HARD, _NORMAL})


# ----------------------------------------------------------------------------- gold


def should_serve_gold(
    served_count: int, gold_served: int, gold_rate: float, rng: RandomState = None
) -> bool:
    """Whether the member's next item should be a gold item.

    With ``d = gold_rate * (served_count + 1) - gold_served`` (the gold still
    owed once this item is served): gold is forced when ``d > 1``, refused when
    ``d < 0`` and otherwise served with probability ``gold_rate`` (one draw from
    ``rng``). As long as every True is followed by a gold item,
    ``|gold_served - gold_rate * served_count| <= 1`` holds after every item.
    ``gold_rate = 0`` never serves gold and draws nothing.
    """
    owner = "should_serve_gold"
    served = _check_count(served_count, param="served_count", owner=owner)
    gold = _check_count(gold_served, param="gold_served", owner=owner)
    rate = check_interval(gold_rate, param="gold_rate", owner=owner, low=0, high=1)
    if gold > served:
        raise InvalidInputError(
            f"gold_served must be at most served_count. Got gold_served={gold}, "
            f"served_count={served}.",
            hint="Count gold items in served_count too.",
        )
    if rate == 0:
        return False
    owed = rate * (served + 1) - gold
    if owed > 1:
        return True
    if owed < 0:
        return False
    return bool(check_rng(rng).random() < rate)


def pick_gold(
    gold_item_ids: Sequence[int], already_seen: Collection[int], rng: RandomState = None
) -> int | None:
    """An unseen gold item, uniformly at random; None when the member saw them all."""
    unseen = [i for i in dict.fromkeys(gold_item_ids) if i not in already_seen]
    if not unseen:
        return None
    return unseen[int(check_rng(rng).integers(len(unseen)))]


@dataclass(frozen=True)
class GoldMix:
    """What :func:`choose_next` needs to mix gold items into a member's stream.

    ``served_count`` and ``gold_served`` count the member's items (gold
    included) over the same period.
    """

    item_ids: tuple[int, ...]
    gold_rate: float
    served_count: int
    gold_served: int


# ---------------------------------------------------------------------- next item


@dataclass(frozen=True)
class Candidate:
    """An item of the current round as the queue sees it.

    ``rank`` is its round rank (lower first), ``reason`` why the round picked
    it, ``target`` the distinct annotators it needs, ``active_leases`` and
    ``done`` its unexpired active leases and submitted annotations.
    """

    item_id: int
    rank: int
    reason: str
    target: int = 1
    active_leases: int = 0
    done: int = 0

    def __post_init__(self) -> None:
        _check_count(self.target, param="target", owner="Candidate", low=1)
        _check_count(self.active_leases, param="active_leases", owner="Candidate")
        _check_count(self.done, param="done", owner="Candidate")

    @property
    def kind(self) -> Kind:
        """``"hard"`` for ``CapRule.HARD_REASONS``, else ``"normal"``."""
        return _kind(self.reason)


@dataclass(frozen=True)
class Assignment:
    """The item to lease to a member now; ``rank`` is None for gold items."""

    item_id: int
    member_id: int
    reason: str
    kind: Kind
    rank: int | None
    assigned_at: datetime


@dataclass(frozen=True)
class NoAssignment:
    """Why a member gets no item now (the API answers 204 with this reason).

    ``reason`` is ``"cap_reached"`` when open items exist in the window but the
    caps forbid all of them (they are hard), ``"exhausted"`` when the window
    holds no open item this member has not been given. Falsy, so
    ``if not result`` reads like a None check.
    """

    reason: NoAssignmentReason
    message: str
    hint: str

    def __bool__(self) -> bool:
        return False

    def as_error(self) -> CapReached | PoolExhausted:
        """The matching exception, for callers that answer with an error."""
        if self.reason == "cap_reached":
            return CapReached(self.message, hint=self.hint)
        return PoolExhausted(self.message, hint=self.hint)


def _not_choosable(
    candidate: Candidate, seen_item_ids: Collection[int], allowed: frozenset[Kind]
) -> Literal["seen", "closed", "blocked"] | None:
    """Why :func:`choose_next` passes over ``candidate`` (None: it may take it)."""
    if candidate.item_id in seen_item_ids:
        return "seen"
    if not needs_more(candidate.target, candidate.active_leases, candidate.done):
        return "closed"
    if candidate.kind not in allowed:
        return "blocked"
    return None


def ranked_choices(
    candidates: Sequence[Candidate],
    *,
    seen_item_ids: Collection[int],
    state: CapState,
    caps: CapRule,
) -> list[Candidate]:
    """The candidates :func:`choose_next` takes, in the order it takes them.

    Without a gold draw, ``choose_next`` answers the first of these; marked
    full, the second; and so on: rank order, never given to the member, open
    (:func:`needs_more`) and of a kind :func:`allowed_kinds` allows. The
    service offers them in this order to one statement that claims the first
    one no other claim is taking (PostgreSQL).

    Parameters
    ----------
    candidates : sequence of Candidate
        The window, in any order.
    seen_item_ids : collection of int
        Items ever given to the member.
    state : CapState
        The member's counts.
    caps : CapRule
        The project policy's caps.

    Returns
    -------
    list of Candidate
        The choosable candidates by ascending rank.
    """
    allowed = allowed_kinds(state, caps)
    return [
        candidate
        for candidate in sorted(candidates, key=lambda c: c.rank)
        if _not_choosable(candidate, seen_item_ids, allowed) is None
    ]


def choose_next(
    candidates: Sequence[Candidate],
    *,
    member_id: int,
    seen_item_ids: Collection[int],
    state: CapState,
    caps: CapRule,
    now: datetime,
    rng: RandomState = None,
    gold: GoldMix | None = None,
) -> Assignment | NoAssignment:
    """Choose the item to lease to ``member_id`` next.

    Parameters
    ----------
    candidates : sequence of Candidate
        A bounded window of the round's items (about :data:`DEFAULT_WINDOW`),
        in any order; they are taken by ascending ``rank``.
    member_id : int
        The member asking.
    seen_item_ids : collection of int
        Items ever given to this member (leased, submitted or skipped), among
        the window's and the gold items at least.
    state : CapState
        The member's counts, from :func:`cap_state`.
    caps : CapRule
        The project policy's caps.
    now : datetime, timezone-aware
        Recorded as ``Assignment.assigned_at``.
    rng : Generator, int or None
        Used for gold mixing only.
    gold : GoldMix, optional
        When given and :func:`should_serve_gold` says so, an unseen gold item
        (:func:`pick_gold`) is served before any candidate.

    Returns
    -------
    Assignment or NoAssignment
        The lowest-rank candidate that the member was never given, that is open
        (:func:`needs_more`) and whose kind :func:`allowed_kinds` allows; else a
        falsy :class:`NoAssignment` saying why.
    """
    _check_now(now)
    if gold is not None and should_serve_gold(
        gold.served_count, gold.gold_served, gold.gold_rate, rng
    ):
        gold_id = pick_gold(gold.item_ids, seen_item_ids, rng)
        if gold_id is not None:
            return Assignment(gold_id, member_id, GOLD_REASON, _NORMAL, None, now)
    allowed = allowed_kinds(state, caps)
    n_seen = n_closed = n_blocked = 0
    for candidate in sorted(candidates, key=lambda c: c.rank):
        why = _not_choosable(candidate, seen_item_ids, allowed)
        if why == "seen":
            n_seen += 1
        elif why == "closed":
            n_closed += 1
        elif why == "blocked":
            n_blocked += 1
        else:
            return Assignment(
                candidate.item_id,
                member_id,
                candidate.reason,
                candidate.kind,
                candidate.rank,
                now,
            )
    if n_blocked:
        return NoAssignment(
            "cap_reached",
            f"No item for member {member_id} now: the caps allow only normal items "
            f"({'; '.join(_hard_blockers(state, caps))}) and the {n_blocked} open "
            f"items of the {len(candidates)} candidates are all hard.",
            "Try again after 00:00 UTC, when the daily counts restart, or let the "
            "round pick more normal items (raise BatchPolicy.random_fraction, lower "
            "CapRule.min_normal_share or raise CapRule.max_hard_per_day).",
        )
    return NoAssignment(
        "exhausted",
        f"No open item for member {member_id} among {len(candidates)} candidates: "
        f"{n_seen} were already given to this member and {n_closed} have all the "
        "annotators they need.",
        "Wait for leases to expire, or start a new round (`labelwise round NAME`).",
    )


# ------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    """Where an item goes: ``"final"`` (with ``label``), ``"review"`` or ``"wait"``.

    ``reason`` is ``"waiting"``, ``"gold_failed"``, ``"flagged"``,
    ``"disagreement"``, ``"single"`` or ``"agreement"``.
    """

    kind: RouteKind
    label: str | None
    reason: str


def route_item(
    votes: Sequence[str],
    *,
    flags: Sequence[str] = (),
    gold_label: str | None = None,
    overlap_target: int,
) -> Route:
    """Route an item from its submitted votes, in this order of precedence.

    1. Fewer votes than ``overlap_target``: ``wait``.
    2. A gold item with any vote other than ``gold_label``: ``review``, ``gold_failed``.
    3. Any non-empty flag: ``review``, ``flagged``.
    4. Votes that differ: ``review``, ``disagreement``.
    5. Otherwise ``final`` with the agreed label (``single`` or ``agreement``).
    """
    target = _check_count(
        overlap_target, param="overlap_target", owner="route_item", low=1
    )
    if len(votes) < target:
        return Route("wait", None, "waiting")
    if gold_label is not None and any(vote != gold_label for vote in votes):
        return Route("review", None, "gold_failed")
    if any(flags):
        return Route("review", None, "flagged")
    if len(set(votes)) > 1:
        return Route("review", None, "disagreement")
    return Route("final", votes[0], "single" if len(votes) == 1 else "agreement")


def disagreement(votes: Sequence[str]) -> float:
    """Share of votes that differ from the most common one; 0 for no votes."""
    if not votes:
        return 0.0
    counts: dict[str, int] = {}
    for vote in votes:
        counts[vote] = counts.get(vote, 0) + 1
    return 1.0 - max(counts.values()) / len(votes)


def calibration_items(
    disputes: Mapping[int, float], *, size: int = 30, rng: RandomState = None
) -> list[int]:
    """The items of a calibration session: the most disputed first.

    Parameters
    ----------
    disputes : mapping of int to float
        Item id to :func:`disagreement` of its votes, for the items in review.
    size : int >= 1, default=30
        Items in the session (calibration sessions use 20 to 50).
    rng : Generator, int or None
        Breaks ties between equal disagreements.

    Returns
    -------
    list of int
        Up to ``size`` ids with disagreement > 0, by decreasing disagreement.
    """
    n = check_int(size, param="size", owner="calibration_items", low=1)
    ids = np.fromiter(disputes.keys(), dtype=np.int64, count=len(disputes))
    scores = np.fromiter(disputes.values(), dtype=np.float64, count=len(disputes))
    order = check_rng(rng).permutation(ids.size)
    order = order[np.argsort(-scores[order], kind="stable")]
    order = order[scores[order] > 0][:n]
    return [int(i) for i in ids[order]]
