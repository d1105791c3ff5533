"""Label-queue use-cases: enqueue a round, claim, submit, skip, flag, renew, undo.

Each function applies the pure rules of :mod:`labelwise.service.queue.rules`
to the store inside the caller's one transaction (``with transaction(factory)
as session:``) and never commits. A claim is one conditional UPDATE
(``active = active + 1 WHERE id = :id AND active + done < target``), and
every lease leaves ``"active"`` through one conditional UPDATE too, so the
entry counters stay exact under concurrency: PostgreSQL re-checks the WHERE
on the locked row (READ COMMITTED) and SQLite runs one writer at a time
(``BEGIN IMMEDIATE``). ``docs/queue.md`` tells the whole story.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    CursorResult,
    DateTime,
    Executable,
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached

from labelwise._typing import RandomState
from labelwise._validation import check_rng
from labelwise.exceptions import (
    ConflictError,
    InvalidInputError,
    LabelwiseError,
    LeaseExpired,
    NotFoundError,
    PermissionDenied,
)
from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.quality._rules import QUEUE_METHODS, decide_item
from labelwise.service.queue import rules
from labelwise.service.queue.rules import (
    DEFAULT_WINDOW,
    GOLD_REASON,
    Assignment,
    Candidate,
    CapState,
    GoldMix,
    NoAssignment,
    Route,
    allowed_kinds,
    cap_windows,
    choose_next,
    new_lease_expiry,
    overlap_targets,
    ranked_choices,
    route_item,
)
from labelwise.service.store.labels import decode_label, encode_label
from labelwise.service.store.members import (
    item_gold,
    membership_checked,
    visible_lease_loaded,
)
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Guideline,
    Item,
    Lease,
    Member,
    Project,
    ProjectMember,
    QueueEntry,
    Round,
    Selection,
    as_utc,
    utcnow,
)

__all__ = [
    "ClaimResult",
    "claim_next",
    "enqueue_round",
    "expire_leases",
    "flag_lease",
    "queue_status",
    "renew_lease",
    "skip_lease",
    "submit_annotation",
    "undo_last",
]

#: Active leases a member may hold at once (the UI prefetches one).
MAX_HELD = 2
#: Why an annotator may flag an item.
FLAGS = ("ambiguous", "guideline_gap", "other")
#: Days of a member's leases loaded for the caps (covers the current week).
CAP_DAYS = 7

OPEN, SUPERSEDED = "open", "superseded"
ACTIVE, SUBMITTED, SKIPPED, FLAGGED, EXPIRED = (
    "active",
    "submitted",
    "skipped",
    "flagged",
    "expired",
)
QUEUE_SOURCE = "queue"
#: Final-label methods the queue writes, and so may replace or remove.
_QUEUE_METHODS = QUEUE_METHODS
#: Claims lost to other members within one window before it is reloaded.
_RACES_PER_WINDOW = 8
_MAX_WINDOWS = 8
_KEY_MAX = 200
#: Ids per IN list (SQLite allows 32766 bound parameters).
_CHUNK = 5000
_NO_SYNC = {"synchronize_session": False}
_Outcome = Literal["closed", "seen"]
#: The queue_entries columns enqueue_round fills, in its SELECT's order.
_ENTRY_COLUMNS = (
    "project_id round_id item_id rank reason target active done status created_at"
).split()


# ---------------------------------------------------------- prepared statements
# The claim and submit paths run these module-level statements with bound
# parameters: building a statement anew costs more Python than running it.

#: Ranked entries loaded by a claim's first window (a prefix of DEFAULT_WINDOW).
_FIRST_WINDOW = 16
_POLICY_CACHE_SIZE = 64
_POLICIES: dict[str, BatchPolicy] = {}
_HARD_REASONS = sorted(CapRule.HARD_REASONS)


# Constants are written into the SQL rather than bound: psycopg converts (and
# caches the conversion of) statements up to 4096 characters and 50 parameters,
# and the claim state of PostgreSQL counts a dozen of these.
_ONE: Any = literal_column("1")
_ZERO: Any = literal_column("0")


def _count_if(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((and_(*conditions), _ONE), else_=_ZERO)), _ZERO)


def _sql_words(words: list[str]) -> list[Any]:
    """``words`` (lowercase reason names of this package) as SQL literals."""
    assert all(word.replace("_", "").isalpha() for word in words), words
    return [literal_column(f"'{word}'") for word in words]


_EXPIRE = (
    update(Lease)
    .where(
        Lease.project_id == bindparam("b_project_id"),
        Lease.status == ACTIVE,
        Lease.expires_at <= bindparam("now"),
    )
    .values(status=EXPIRED, finished_at=bindparam("finished"))
    .returning(Lease.queue_entry_id)
)
_ADJUST_ENTRY = (
    update(QueueEntry)
    .where(QueueEntry.id == bindparam("entry_id"))
    .values(
        active=QueueEntry.active + bindparam("d_active"),
        done=QueueEntry.done + bindparam("d_done"),
    )
)
_HELD = (
    select(Lease.id, Lease.item_id, Lease.expires_at, Lease.reason)
    .where(
        Lease.project_id == bindparam("project_id"),
        Lease.member_id == bindparam("member_id"),
        Lease.status == ACTIVE,
    )
    .order_by(Lease.created_at, Lease.id)
    .limit(MAX_HELD)
)
_LATEST_POLICY = (
    select(Round.policy)
    .where(Round.project_id == bindparam("project_id"))
    .order_by(Round.number.desc())
    .limit(1)
)
_hard = Lease.reason.in_(_sql_words(_HARD_REASONS))
_active = Lease.status == ACTIVE
_submitted = Lease.status == SUBMITTED
_today = (Lease.created_at >= bindparam("day"), Lease.created_at < bindparam("day_end"))
_week = (
    Lease.created_at >= bindparam("week"),
    Lease.created_at < bindparam("week_end"),
)
_until = Lease.created_at < bindparam("week_end")

# The questions a claim asks about a project and a member, built for the
# parameters ``project_id`` and ``member_id`` (the SQLite path) and again for
# p_project and p_member (PostgreSQL's one statement, see below).


def _caps_query(project: Any, member: Any) -> Any:
    """rules.cap_state over the member's leases since ``since``, and the policy."""
    latest_policy = (
        select(Round.policy)
        .where(Round.project_id == project)
        .order_by(Round.number.desc())
        .limit(1)
    )
    return select(
        _count_if(_hard, *_today).label("hard_today"),
        _count_if(~_hard, *_today).label("normal_today"),
        _count_if(_hard, *_week).label("hard_week"),
        _count_if(*_week).label("total_week"),
        _count_if(_hard, _until).label("hard_until"),
        _count_if(_until).label("total_until"),
        latest_policy.scalar_subquery().label("policy"),
    ).where(
        Lease.member_id == member,
        Lease.project_id == project,
        Lease.created_at >= bindparam("since"),
    )


#: An open entry with room left: fewer leases running and answered than its target.
_HAS_ROOM = (
    QueueEntry.status == OPEN,
    QueueEntry.active + QueueEntry.done < QueueEntry.target,
)


def _open_entries(project: Any, member: Any) -> Any:
    """The project's open entries with room left that the member never held."""
    never_held = ~exists().where(
        Lease.item_id == QueueEntry.item_id, Lease.member_id == member
    )
    return select(
        QueueEntry.id,
        QueueEntry.item_id,
        QueueEntry.rank,
        QueueEntry.reason,
        QueueEntry.target,
        QueueEntry.active,
        QueueEntry.done,
    ).where(
        QueueEntry.project_id == project,
        *_HAS_ROOM,
        never_held,
    )


def _gold_ids_query(project: Any, member: Any) -> Any:
    """Up to DEFAULT_WINDOW gold items of the project the member never held."""
    return (
        select(Item.id)
        .where(
            Item.project_id == project,
            Item.role == "gold",
            ~exists().where(Lease.item_id == Item.id, Lease.member_id == member),
        )
        .order_by(Item.id)
        .limit(DEFAULT_WINDOW)
    )


def _gold_counts_query(project: Any, member: Any) -> Any:
    """The member's items in the project, and how many of them were gold."""
    return select(func.count(), _count_if(Lease.reason == GOLD_REASON)).where(
        Lease.project_id == project, Lease.member_id == member
    )


_project_id: Any = bindparam("project_id")
_member_id: Any = bindparam("member_id")
_CAPS = _caps_query(_project_id, _member_id)
_WINDOW = (
    _open_entries(_project_id, _member_id)
    .order_by(QueueEntry.rank, QueueEntry.id)
    .limit(bindparam("size"))
)
_WINDOW_NORMAL = (
    _open_entries(_project_id, _member_id)
    .where(QueueEntry.reason.not_in(_HARD_REASONS))
    .order_by(QueueEntry.rank, QueueEntry.id)
    .limit(bindparam("size"))
)
_GOLD_IDS = _gold_ids_query(_project_id, _member_id)
_GOLD_COUNTS = _gold_counts_query(_project_id, _member_id)
_TAKE_ENTRY = (
    update(QueueEntry)
    .where(
        QueueEntry.id == bindparam("entry_id"),
        *_HAS_ROOM,
    )
    .values(active=QueueEntry.active + 1)
)
_INSERT_LEASE = {
    name: dialect_insert(Lease).on_conflict_do_nothing().returning(Lease.id)
    for name, dialect_insert in (
        ("postgresql", postgresql_insert),
        ("sqlite", sqlite_insert),
    )
}
_END_LEASE = (
    update(Lease)
    .where(
        Lease.id == bindparam("lease_id"),
        Lease.member_id == bindparam("b_member_id"),
        Lease.status == ACTIVE,
        Lease.expires_at > bindparam("now"),
    )
    .values(status=bindparam("new_status"), finished_at=bindparam("b_finished_at"))
    .returning(Lease.queue_entry_id)
)
_DELETE_LEASE = delete(Lease).where(Lease.id == bindparam("lease_id"))
_ITEM_PAYLOAD = select(Item.external_id, Item.fields).where(
    Item.id == bindparam("item_id")
)
#: What a submit needs besides the lease: the item's gold answer, the entry's
#: round and target, and the project's current guideline version.
_SUBMIT_CONTEXT = select(
    Item.role,
    Item.gold_label,
    select(QueueEntry.round_id)
    .where(QueueEntry.id == bindparam("entry_id"))
    .scalar_subquery(),
    select(QueueEntry.target)
    .where(QueueEntry.id == bindparam("entry_id"))
    .scalar_subquery(),
    select(func.max(Guideline.version))
    .where(Guideline.project_id == bindparam("project_id"))
    .scalar_subquery(),
).where(Item.id == bindparam("item_id"))
_INSERT_ANNOTATION = {
    name: dialect_insert(Annotation).on_conflict_do_nothing().returning(Annotation.id)
    for name, dialect_insert in (
        ("postgresql", postgresql_insert),
        ("sqlite", sqlite_insert),
    )
}
_DELETE_ANNOTATION = delete(Annotation).where(
    Annotation.id == bindparam("annotation_id")
)
_votes_and_flags = union_all(
    select(
        literal_column("0").label("kind"),
        Annotation.id.label("row_id"),
        Annotation.label.label("label"),
        Annotation.flag.label("flag"),
    ).where(
        Annotation.item_id == bindparam("item_id"),
        Annotation.source == QUEUE_SOURCE,
    ),
    select(literal_column("1"), Lease.id, Lease.flag, Lease.flag).where(
        Lease.item_id == bindparam("item_id"), Lease.status == FLAGGED
    ),
).subquery()
#: An item's queue votes (kind 0, by id) and its flagged leases (kind 1).
_VOTES_AND_FLAGS = select(
    _votes_and_flags.c.kind, _votes_and_flags.c.label, _votes_and_flags.c.flag
).order_by(_votes_and_flags.c.kind, _votes_and_flags.c.row_id)


def _upsert_final(dialect_insert: Any) -> Any:
    statement = dialect_insert(FinalLabel)
    return statement.on_conflict_do_update(
        index_elements=[FinalLabel.item_id],
        set_={
            name: statement.excluded[name]
            for name in (
                "project_id",
                "label",
                "method",
                "confidence",
                "n_annotations",
                "updated_at",
            )
        },
    )


_UPSERT_FINAL = {
    "postgresql": _upsert_final(postgresql_insert),
    "sqlite": _upsert_final(sqlite_insert),
}
_DELETE_QUEUE_FINAL = delete(FinalLabel).where(
    FinalLabel.item_id == bindparam("item_id"),
    FinalLabel.method.in_(_QUEUE_METHODS),
)
_ITEM_GOLD = select(Item.role, Item.gold_label).where(Item.id == bindparam("item_id"))


# ----------------------------------------- PostgreSQL: fewer statements, same answers
# On a client/server database every statement is a round trip (and under load
# a wait for the server process to be scheduled), so on PostgreSQL the claim
# and the submit ask in one statement what the SQLite path asks in several,
# with data-modifying CTEs (SQLite has none). A claim is BEGIN, the token
# check, _PG_CLAIM_STATE, _PG_TAKE, COMMIT; a submit BEGIN, the token check,
# _PG_SUBMIT, the final label, COMMIT. Every write keeps its condition: the
# entry is still claimed by one conditional UPDATE, and a lease ends by one.
# Parameters are named p_* (SQLAlchemy reserves the names of the columns an
# INSERT or UPDATE sets).


def _p(name: str, type_: Any = Integer) -> Any:
    return bindparam(name, type_=type_)


def _count_of(cte: Any) -> Any:
    return select(func.count()).select_from(cte).scalar_subquery()


def _json_agg(source: Any, value: Any, *order: Any) -> Any:
    """``value`` over the rows of ``source`` as one JSON array, in ``order``."""
    return type_coerce(
        select(func.json_agg(aggregate_order_by(value, *order)))
        .select_from(source)
        .scalar_subquery(),
        JSON,
    )


def _json_rows(source: Any, *order: Any) -> Any:
    """The rows of ``source`` as one JSON array of arrays, in ``order``."""
    return _json_agg(source, func.json_build_array(*source.c), *order)


_p_now = _p("p_now", DateTime(timezone=True))
_p_project = _p("p_project")
_p_member = _p("p_member")
_p_item = _p("p_item")
_p_entry = _p("p_entry")
_pg_expired = (
    update(Lease)
    .where(
        Lease.project_id == _p_project,
        Lease.status == ACTIVE,
        Lease.expires_at <= _p_now,
    )
    .values(status=EXPIRED, finished_at=_p_now)
    .returning(Lease.queue_entry_id)
    .cte("expired")
)
_pg_freed = (
    select(_pg_expired.c.queue_entry_id.label("id"), func.count().label("n"))
    .where(_pg_expired.c.queue_entry_id.is_not(None))
    .group_by(_pg_expired.c.queue_entry_id)
    .cte("freed")
)
_pg_released = (
    update(QueueEntry)
    .where(QueueEntry.id == _pg_freed.c.id)
    .values(active=QueueEntry.active - _pg_freed.c.n)
    .returning(QueueEntry.id)
    .cte("released")
)
_pg_caps = _caps_query(_p_project, _p_member).subquery("caps")
_pg_gold_ids = _gold_ids_query(_p_project, _p_member).cte("gold")
_pg_gold_counts = _gold_counts_query(_p_project, _p_member).subquery("gold_counts")
_pg_window = (
    _open_entries(_p_project, _p_member)
    .order_by(QueueEntry.rank, QueueEntry.id)
    .limit(_FIRST_WINDOW)
    .subquery("first_window")
)
#: expire_leases, the leases held, the caps and policy, the gold items and
#: counts, and the first window, in one statement. Its SELECTs see the
#: database as the statement began, before its own expiries: the held count
#: leaves those leases out itself (expires_at > now), and when anything
#: expired the caller reads the window again (it may hold freed entries).
#: The gold counts are only computed when there is a gold item to serve.
_PG_CLAIM_STATE = select(
    _count_of(_pg_expired).label("n_expired"),
    _count_of(_pg_released).label("n_released"),
    select(func.count())
    .where(
        Lease.project_id == _p_project,
        Lease.member_id == _p_member,
        Lease.status == ACTIVE,
        Lease.expires_at > _p_now,
    )
    .scalar_subquery()
    .label("n_held"),
    *_pg_caps.c,
    _json_agg(_pg_gold_ids, _pg_gold_ids.c.id, _pg_gold_ids.c.id).label("gold_ids"),
    type_coerce(
        select(func.json_build_array(*_pg_gold_counts.c))
        .where(select(_pg_gold_ids.c.id).exists())
        .scalar_subquery(),
        JSON,
    ).label("gold_counts"),
    _json_rows(_pg_window, _pg_window.c.rank, _pg_window.c.id).label("window"),
).select_from(_pg_caps)

_LEASE_COLUMNS = (
    "project_id item_id member_id queue_entry_id reason status created_at expires_at"
).split()


def _pg_new_lease(
    entry_id: Any, source: Any = None, *, item: Any = _p_item, reason: Any = None
) -> Any:
    """INSERT the lease (ON CONFLICT DO NOTHING RETURNING id), as a CTE.

    ``item`` and ``reason`` default to the statement's parameters; a claim over
    several entries reads them from the entry it took (``source``).
    """
    values = select(
        _p_project,
        item,
        _p_member,
        entry_id,
        _p("p_reason", String) if reason is None else reason,
        literal(ACTIVE),
        _p_now,
        _p("p_expires", DateTime(timezone=True)),
    )
    if source is not None:
        values = values.select_from(source)
    return (
        postgresql_insert(Lease)
        .from_select(_LEASE_COLUMNS, values)
        .on_conflict_do_nothing()
        .returning(Lease.id)
        .cte("new_lease")
    )


_pg_taken = (
    update(QueueEntry)
    .where(
        QueueEntry.id == _p_entry,
        *_HAS_ROOM,
    )
    .values(active=QueueEntry.active + 1)
    .returning(QueueEntry.id)
    .cte("taken")
)
_pg_entry_lease = _pg_new_lease(_pg_taken.c.id, _pg_taken)
_pg_gold_lease = _pg_new_lease(literal(None, Integer))
#: The claim's one conditional UPDATE of the entry, then the lease for the
#: entry it claimed (none when another member filled it first), then the
#: item's payload: ``taken`` 1 and no lease means the member held the item.
_PG_TAKE = select(
    _count_of(_pg_taken).label("taken"),
    select(_pg_entry_lease.c.id).scalar_subquery().label("lease_id"),
    Item.external_id,
    Item.fields,
).where(Item.id == _p_item)
#: The same for a gold item, which has no queue entry.
_PG_TAKE_GOLD = select(
    literal(0).label("taken"),
    select(_pg_gold_lease.c.id).scalar_subquery().label("lease_id"),
    Item.external_id,
    Item.fields,
).where(Item.id == _p_item)

_p_entries = _p("p_entries", ARRAY(Integer))
#: The first of the offered entries (in the order offered) with room left
#: that no other transaction has locked: another claim taking it right now is
#: passed over instead of waited for (FOR UPDATE SKIP LOCKED).
_pg_first_free = (
    select(QueueEntry.id)
    .where(
        QueueEntry.id == any_(_p_entries),
        *_HAS_ROOM,
    )
    .order_by(func.array_position(_p_entries, QueueEntry.id))
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_pg_taken_first = (
    update(QueueEntry)
    .where(
        QueueEntry.id == _pg_first_free,
        *_HAS_ROOM,
    )
    .values(active=QueueEntry.active + 1)
    .returning(QueueEntry.id, QueueEntry.item_id, QueueEntry.reason)
    .cte("taken")
)
_pg_first_lease = _pg_new_lease(
    _pg_taken_first.c.id,
    _pg_taken_first,
    item=_pg_taken_first.c.item_id,
    reason=_pg_taken_first.c.reason,
)
#: _PG_TAKE over several entries in the order choose_next would take them:
#: the conditional UPDATE of the first free one, its lease, its payload. No
#: row: every offered entry is full or being claimed by another transaction.
_PG_TAKE_FIRST = select(
    _pg_taken_first.c.id.label("entry_id"),
    _pg_taken_first.c.item_id,
    _pg_taken_first.c.reason,
    select(_pg_first_lease.c.id).scalar_subquery().label("lease_id"),
    Item.external_id,
    Item.fields,
).select_from(_pg_taken_first.join(Item, Item.id == _pg_taken_first.c.item_id))

_p_lease = _p("p_lease")
_pg_annotation = (
    postgresql_insert(Annotation)
    .values(
        project_id=_p_project,
        item_id=_p_item,
        member_id=_p_member,
        label=_p("p_label", Text),
        source=QUEUE_SOURCE,
        provenance=_p("p_provenance", JSON),
        round_id=select(QueueEntry.round_id)
        .where(QueueEntry.id == _p_entry)
        .scalar_subquery(),
        reason=_p("p_reason", String),
        time_spent_ms=_p("p_time_spent_ms"),
        guideline_version=select(func.max(Guideline.version))
        .where(Guideline.project_id == _p_project)
        .scalar_subquery(),
        idempotency_key=_p("p_idempotency_key", String),
        lease_id=_p_lease,
        created_at=_p_now,
    )
    .on_conflict_do_nothing()
    .returning(Annotation.id, Annotation.round_id, Annotation.guideline_version)
    .cte("new_annotation")
)
_pg_closed = (
    update(Lease)
    .where(
        Lease.id == _p_lease,
        Lease.member_id == _p_member,
        Lease.status == ACTIVE,
        Lease.expires_at > _p_now,
        select(_pg_annotation.c.id).exists(),
    )
    .values(status=SUBMITTED, finished_at=_p_now)
    .returning(Lease.id, Lease.queue_entry_id)
    .cte("closed")
)
# The entry the lease belongs to as the UPDATE finds it: a new round committed
# since the lease was read may have handed the lease to its own entry.
_pg_counted = (
    update(QueueEntry)
    .where(QueueEntry.id.in_(select(_pg_closed.c.queue_entry_id)))
    .values(active=QueueEntry.active - 1, done=QueueEntry.done + 1)
    .returning(QueueEntry.target)
    .cte("counted")
)
_pg_votes = union_all(
    select(
        literal_column("0").label("kind"),
        Annotation.id.label("row_id"),
        Annotation.label.label("label"),
        Annotation.flag.label("flag"),
    ).where(Annotation.item_id == _p_item, Annotation.source == QUEUE_SOURCE),
    select(literal_column("1"), Lease.id, Lease.flag, Lease.flag).where(
        Lease.item_id == _p_item, Lease.status == FLAGGED
    ),
).subquery("votes")
#: INSERT the annotation (ON CONFLICT DO NOTHING on the idempotency key), end
#: the lease if it inserted (the conditional UPDATE of _END_LEASE), count the
#: entry done if the lease ended, and read the item's earlier votes and flags
#: (the new vote is not among them: same statement). No row: the key is taken.
_PG_SUBMIT = select(
    _pg_annotation.c.id,
    _pg_annotation.c.round_id,
    _pg_annotation.c.guideline_version,
    _count_of(_pg_closed).label("closed"),
    select(_pg_counted.c.target).scalar_subquery().label("target"),
    _json_agg(
        _pg_votes,
        func.json_build_array(_pg_votes.c.kind, _pg_votes.c.label, _pg_votes.c.flag),
        _pg_votes.c.kind,
        _pg_votes.c.row_id,
    ).label("votes"),
).select_from(_pg_annotation)


@dataclass(frozen=True)
class ClaimResult:
    """The item a member now holds: its lease, payload, expiry and selection reason."""

    lease_id: int
    item_id: int
    external_id: str
    fields: dict[str, Any]
    expires_at: datetime
    reason: str


# ------------------------------------------------------------------------ helpers


def _utc(now: object) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidInputError(
            f"now must be a timezone-aware datetime. Got {now!r} instead.",
            hint="Pass datetime.now(timezone.utc); naive datetimes are ambiguous.",
        )
    return now.astimezone(UTC)


def _rowcount(session: Session, statement: Executable) -> int:
    result = session.execute(statement, execution_options=_NO_SYNC)
    return _count(result)


def _count(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount)


def _conn(session: Session) -> Connection:
    """The session's connection: the hot paths run prepared Core statements on it
    (no ORM compilation, and SQLAlchemy's cache key is computed once per statement)."""
    return session.connection()


def _next_hint(project: Project) -> str:
    return f"Claim the next item with POST /api/v1/projects/{project.name}/next."


def _adjust_entries(
    session: Session, counts: Counter[int], *, active: int = 0, done: int = 0
) -> None:
    """Add ``n * active`` and ``n * done`` to each entry, one UPDATE per distinct n."""
    by_n: dict[int, list[int]] = {}
    for entry_id, n in counts.items():
        by_n.setdefault(n, []).append(entry_id)
    for n, ids in sorted(by_n.items()):
        if len(ids) == 1:  # the common case: one prepared statement
            _conn(session).execute(
                _ADJUST_ENTRY,
                {"entry_id": ids[0], "d_active": n * active, "d_done": n * done},
            )
            continue
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.id.in_(ids))
            .values(
                active=QueueEntry.active + n * active, done=QueueEntry.done + n * done
            ),
            execution_options=_NO_SYNC,
        )


def _parsed_policy(data: dict[str, Any]) -> BatchPolicy:
    """``BatchPolicy.from_dict(data)``, parsed once per process for equal contents.

    Keyed by the policy's canonical JSON, so a cached entry can never be stale:
    another process (or a new round) with another policy gives another key.
    """
    key = json.dumps(data, sort_keys=True, separators=(",", ":"))
    policy = _POLICIES.get(key)
    if policy is None:
        policy = BatchPolicy.from_dict(data)
        if len(_POLICIES) >= _POLICY_CACHE_SIZE:
            _POLICIES.clear()
        _POLICIES[key] = policy
    return policy


# ------------------------------------------------------------------------ enqueue


def _carried(
    session: Session, wanted: tuple[ColumnElement[bool], ...]
) -> dict[int, tuple[int, int]]:
    """Item -> (target, answers) of the wanted items with running or submitted
    queue leases.

    ``answers`` counts the submitted leases (an annotation each) and ``target``
    is the target of the entry they count on (the largest, should a database
    written before the carry-over hold them on several).
    """
    live = (
        select(Lease.item_id, func.max(QueueEntry.target), _count_if(_submitted))
        .join(QueueEntry, QueueEntry.id == Lease.queue_entry_id)
        .where(
            Lease.item_id.in_(select(Selection.item_id).where(*wanted)),
            Lease.status.in_((ACTIVE, SUBMITTED)),
        )
        .group_by(Lease.item_id)
    )
    return {
        int(item_id): (int(target), int(answers))
        for item_id, target, answers in session.execute(live)
    }


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _take_over(session: Session, round: Round, carried: dict[int, int]) -> None:
    """Move the running and submitted queue leases of the ``carried`` items (item ->
    target) to the round's entries, which get those targets.

    Every entry of those items is then recounted from the leases it holds, so
    the earlier entries give up the moved ones (each entry's ``active`` and
    ``done`` equal its active and submitted leases), and a lease that ended or
    was undone meanwhile counts where it now is: its later end or undo adjusts
    the new entry.
    """
    entry_of_item = (
        select(QueueEntry.id)
        .where(QueueEntry.round_id == round.id, QueueEntry.item_id == Lease.item_id)
        .scalar_subquery()
    )
    leases_of_entry = select(func.count()).where(Lease.queue_entry_id == QueueEntry.id)
    for chunk in _chunks(list(carried)):
        session.execute(
            update(Lease)
            .where(
                Lease.item_id.in_(chunk),
                Lease.queue_entry_id.is_not(None),
                Lease.status.in_((ACTIVE, SUBMITTED)),
            )
            .values(queue_entry_id=entry_of_item),
            execution_options=_NO_SYNC,
        )
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.item_id.in_(chunk))
            .values(
                active=leases_of_entry.where(_active).scalar_subquery(),
                done=leases_of_entry.where(_submitted).scalar_subquery(),
            ),
            execution_options=_NO_SYNC,
        )
    by_target: dict[int, list[int]] = {}
    for item_id, target in carried.items():
        by_target.setdefault(target, []).append(item_id)
    for target, item_ids in sorted(by_target.items()):
        for chunk in _chunks(item_ids):
            session.execute(
                update(QueueEntry)
                .where(QueueEntry.round_id == round.id, QueueEntry.item_id.in_(chunk))
                .values(target=target),
                execution_options=_NO_SYNC,
            )


def enqueue_round(*, session: Session, round: Round) -> int:
    """Queue a round's unlabeled selections in rank order; idle open entries retire.

    An item an earlier entry left answers (or a running lease) on carries them
    over: its new entry keeps the earlier target and counts those answers, and
    takes over their leases; an item whose answers already met that target is
    not queued again. Returns the number of entries added.
    """
    policy = BatchPolicy.from_dict(round.policy)
    session.execute(
        update(QueueEntry)
        .where(
            QueueEntry.project_id == round.project_id,
            QueueEntry.status == OPEN,
            QueueEntry.active == 0,
            QueueEntry.round_id != round.id,
        )
        .values(status=SUPERSEDED),
        execution_options=_NO_SYNC,
    )
    labeled = exists().where(FinalLabel.item_id == Selection.item_id)
    queued = exists().where(
        QueueEntry.item_id == Selection.item_id,
        QueueEntry.project_id == round.project_id,
        QueueEntry.status == OPEN,
    )
    wanted = (Selection.round_id == round.id, ~labeled, ~queued)
    order = (Selection.rank, Selection.id)
    item_ids = session.scalars(
        select(Selection.item_id).where(*wanted).order_by(*order)
    ).all()
    if not item_ids:
        return 0
    carried = _carried(session, wanted)
    met = [item for item, (target, answers) in carried.items() if answers >= target]
    targets = overlap_targets(
        item_ids,
        overlap_k=policy.overlap_k,
        overlap_rate=policy.overlap_rate,
        rng=round.seed,
    )
    # Every entry in one INSERT ... SELECT with target 1, then the overlap ones,
    # then the met items out and the carried ones' targets and counts in.
    rows = select(
        literal(round.project_id),
        Selection.round_id,
        Selection.item_id,
        Selection.rank,
        Selection.reason,
        literal(1),
        literal(0),
        literal(0),
        literal(OPEN),
        literal(utcnow(), QueueEntry.created_at.type),
    ).where(*wanted)
    session.execute(
        insert(QueueEntry).from_select(_ENTRY_COLUMNS, rows.order_by(*order))
    )
    overlap = [
        item_id
        for item_id, target in targets.items()
        if target > 1 and item_id not in carried
    ]
    for chunk in _chunks(overlap):
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.round_id == round.id, QueueEntry.item_id.in_(chunk))
            .values(target=policy.overlap_k),
            execution_options=_NO_SYNC,
        )
    for chunk in _chunks(met):
        session.execute(
            delete(QueueEntry).where(
                QueueEntry.round_id == round.id, QueueEntry.item_id.in_(chunk)
            ),
            execution_options=_NO_SYNC,
        )
    _take_over(
        session,
        round,
        {
            item: target
            for item, (target, answers) in carried.items()
            if answers < target
        },
    )
    if session.get_bind().dialect.name == "postgresql":
        # Fresh planner statistics, or claims right after a bulk enqueue get a
        # nested-loop plan over every open entry (ANALYZE counts our own rows).
        session.execute(text("ANALYZE queue_entries"))
    return len(item_ids) - len(met)


def expire_leases(*, session: Session, project: Project, now: datetime) -> int:
    """Mark the active leases with ``expires_at <= now`` expired; their items reopen."""
    now = _utc(now)
    expired = (
        _conn(session)
        .execute(_EXPIRE, {"b_project_id": project.id, "now": now, "finished": now})
        .all()
    )
    entries = Counter(row[0] for row in expired if row[0] is not None)
    _adjust_entries(session, entries, active=-1)
    return len(expired)


# -------------------------------------------------------------------------- claim


def _check_member(session: Session, project: Project, member: Member) -> None:
    if not member.active:
        raise PermissionDenied(
            f"Member {member.name!r} is deactivated and cannot claim items in "
            f"project {project.name!r}.",
            hint="Ask an admin to reactivate the account.",
        )
    if member.role == "admin" or membership_checked(session, project.id, member.id):
        return
    joined = session.scalar(
        select(ProjectMember.member_id).where(
            ProjectMember.project_id == project.id,
            ProjectMember.member_id == member.id,
        )
    )
    if joined is None:
        raise PermissionDenied(
            f"Member {member.name!r} must belong to project {project.name!r} to "
            "claim its items; they are not a member of it.",
            hint="Ask a lead or an admin to add them to the project.",
        )


def _claim_result(
    session: Session, lease_id: int, item_id: int, expires_at: datetime, reason: str
) -> ClaimResult:
    external_id, fields = (
        _conn(session).execute(_ITEM_PAYLOAD, {"item_id": item_id}).one()
    )
    return ClaimResult(
        lease_id, item_id, external_id, dict(fields), as_utc(expires_at), reason
    )


def _window_of(rows: Any) -> dict[int, tuple[int, Candidate]]:
    """Ranked entry rows (id, item, rank, reason, target, active, done) by item."""
    window: dict[int, tuple[int, Candidate]] = {}
    for entry_id, item_id, rank, reason, target, active, done in rows:
        window.setdefault(
            item_id, (entry_id, Candidate(item_id, rank, reason, target, active, done))
        )
    return window


def _window(
    session: Session,
    project: Project,
    member: Member,
    *,
    normal_only: bool = False,
    size: int = DEFAULT_WINDOW,
) -> dict[int, tuple[int, Candidate]]:
    """Up to ``size`` open entries the member never held: item -> (entry, it).

    The rows are the first ``size`` of the same ranked query whatever ``size``
    is, so a shorter window is a prefix of the DEFAULT_WINDOW one.
    """
    query = _WINDOW_NORMAL if normal_only else _WINDOW
    return _window_of(
        _conn(session).execute(
            query, {"project_id": project.id, "member_id": member.id, "size": size}
        )
    )


def _gold_of(gold_rate: float, gold_ids: Any, counts: Any) -> GoldMix | None:
    if gold_rate <= 0 or not gold_ids:
        return None
    served, gold = counts
    return GoldMix(tuple(gold_ids), gold_rate, int(served), int(gold))


def _gold_mix(
    session: Session, project: Project, member: Member, gold_rate: float
) -> GoldMix | None:
    if gold_rate <= 0:
        return None
    conn = _conn(session)
    params = {"project_id": project.id, "member_id": member.id}
    gold_ids = conn.execute(_GOLD_IDS, params).scalars().all()
    if not gold_ids:
        return None
    return _gold_of(gold_rate, gold_ids, conn.execute(_GOLD_COUNTS, params).one())


def _caps_params(project: Project, member: Member, now: datetime) -> dict[str, Any]:
    day, day_end, week, week_end = cap_windows(now)
    return {
        "project_id": project.id,
        "member_id": member.id,
        "since": now - timedelta(days=CAP_DAYS),
        "day": day,
        "day_end": day_end,
        "week": week,
        "week_end": week_end,
    }


def _caps_of(row: Any) -> tuple[BatchPolicy | None, CapRule, CapState]:
    """The policy, caps and cap state from a row of _CAPS's columns."""
    policy = None if row.policy is None else _parsed_policy(row.policy)
    caps = CapRule() if policy is None else policy.caps
    if caps.weekly_reset:
        hard_week, total_week = row.hard_week, row.total_week
    else:
        hard_week, total_week = row.hard_until, row.total_until
    state = CapState(
        int(row.hard_today), int(row.normal_today), int(hard_week), int(total_week)
    )
    return policy, caps, state


def _caps(
    session: Session, project: Project, member: Member, now: datetime
) -> tuple[BatchPolicy | None, CapRule, CapState]:
    """The latest round's policy, its caps and the member's counts, in one query.

    The counts are :func:`~labelwise.service.queue.rules.cap_state` over the
    member's leases of the last CAP_DAYS, summed in SQL (a member's week of
    leases is never loaded): ``tests/service/queue`` checks both agree.
    """
    params = _caps_params(project, member, now)
    return _caps_of(_conn(session).execute(_CAPS, params).one())


@dataclass(frozen=True)
class _ClaimState:
    """What a claim reads before choosing: caps, and maybe its first window."""

    policy: BatchPolicy | None
    caps: CapRule
    state: CapState
    #: The first window and gold mix when read with the rest (PostgreSQL),
    #: else None: the claim loop reads them.
    first: tuple[dict[int, tuple[int, Candidate]], GoldMix | None] | None = None


def _claim_state(
    session: Session, project: Project, member: Member, now: datetime
) -> _ClaimState | ClaimResult:
    """Expire, then the oldest held lease (MAX_HELD held) or what a choice needs."""
    conn = _conn(session)
    held_params = {"project_id": project.id, "member_id": member.id}
    if conn.dialect.name != "postgresql":
        expire_leases(session=session, project=project, now=now)
        held = conn.execute(_HELD, held_params).all()
        if len(held) >= MAX_HELD:
            return _claim_result(session, *held[0])
        return _ClaimState(*_caps(session, project, member, now))
    params = _caps_params(project, member, now)
    params.update(
        p_project=params.pop("project_id"), p_member=params.pop("member_id"), p_now=now
    )
    row = conn.execute(_PG_CLAIM_STATE, params).one()
    if row.n_held >= MAX_HELD:
        oldest = conn.execute(_HELD, held_params).all()[0]
        return _claim_result(session, *oldest)
    policy, caps, state = _caps_of(row)
    if row.n_expired:  # the window may hold entries those leases freed
        return _ClaimState(policy, caps, state)
    gold_rate = 0.0 if policy is None else policy.gold_rate
    gold = _gold_of(gold_rate, row.gold_ids, row.gold_counts)
    return _ClaimState(policy, caps, state, (_window_of(row.window or ()), gold))


def _take(
    session: Session,
    project: Project,
    member: Member,
    assignment: Assignment,
    entry_id: int | None,
    now: datetime,
    expires_at: datetime,
) -> ClaimResult | _Outcome:
    """Insert the lease, then claim the entry with one conditional UPDATE.

    ``INSERT ... ON CONFLICT DO NOTHING`` finds a lease this member holds
    already (UNIQUE(item_id, member_id)) without an error, and an entry lost
    to another member deletes the fresh lease: no savepoint is needed and the
    transaction stays usable. On PostgreSQL one statement (_PG_TAKE) claims
    the entry first and inserts the lease only if it did.
    """
    conn = _conn(session)
    if conn.dialect.name == "postgresql":
        return _pg_take(conn, project, member, assignment, entry_id, now, expires_at)
    lease_id = conn.execute(
        _INSERT_LEASE[conn.dialect.name],
        {
            "project_id": project.id,
            "item_id": assignment.item_id,
            "member_id": member.id,
            "queue_entry_id": entry_id,
            "reason": assignment.reason,
            "status": ACTIVE,
            "created_at": now,
            "expires_at": expires_at,
        },
    ).scalar()
    if lease_id is None:  # this member holds (or held) the item already
        return "seen"
    if entry_id is not None:
        won = _count(conn.execute(_TAKE_ENTRY, {"entry_id": entry_id}))
        if not won:
            conn.execute(_DELETE_LEASE, {"lease_id": lease_id})
            return "closed"
    return _claim_result(
        session, lease_id, assignment.item_id, expires_at, assignment.reason
    )


def _pg_take(
    conn: Connection,
    project: Project,
    member: Member,
    assignment: Assignment,
    entry_id: int | None,
    now: datetime,
    expires_at: datetime,
) -> ClaimResult | _Outcome:
    """_take on PostgreSQL: entry, lease and payload in one statement."""
    taken, lease_id, external_id, fields = conn.execute(
        _PG_TAKE if entry_id is not None else _PG_TAKE_GOLD,
        {
            "p_project": project.id,
            "p_item": assignment.item_id,
            "p_member": member.id,
            "p_entry": entry_id,
            "p_reason": assignment.reason,
            "p_now": now,
            "p_expires": expires_at,
        },
    ).one()
    if lease_id is None:
        if not taken:
            # Another member filled the entry first (no lease was inserted),
            # or, for a gold item, this member holds it already.
            return "closed" if entry_id is not None else "seen"
        # The entry was claimed but this member holds (or held) the item.
        conn.execute(_ADJUST_ENTRY, {"entry_id": entry_id, "d_active": -1, "d_done": 0})
        return "seen"
    return ClaimResult(
        lease_id,
        assignment.item_id,
        external_id,
        dict(fields),
        as_utc(expires_at),
        assignment.reason,
    )


def _pg_take_first(
    session: Session,
    project: Project,
    member: Member,
    first: Assignment,
    window: dict[int, tuple[int, Candidate]],
    offered: list[Candidate],
    now: datetime,
    expires_at: datetime,
) -> tuple[ClaimResult | _Outcome, int]:
    """Claim the first of ``offered`` that no other claim is taking (PostgreSQL).

    ``offered`` are the window's candidates in the order choose_next takes
    them (``first`` is the first): one statement claims the first with room
    that no other transaction holds locked, so concurrent claims spread over
    the top of the queue instead of queueing for its first entry. When each
    one is full or locked, the claim waits for the first, as on SQLite (a
    claim in flight may fail, and an overlap entry may keep room): a claim
    never answers "exhausted" while an entry it could take is being claimed.
    Returns the outcome and the item it concerns.
    """
    conn = _conn(session)
    row = conn.execute(
        _PG_TAKE_FIRST,
        {
            "p_entries": [window[candidate.item_id][0] for candidate in offered],
            "p_project": project.id,
            "p_member": member.id,
            "p_now": now,
            "p_expires": expires_at,
        },
    ).first()
    if row is None:
        entry_id = window[first.item_id][0]
        waited = _take(session, project, member, first, entry_id, now, expires_at)
        return waited, first.item_id
    entry_id, item_id, reason, lease_id, external_id, fields = row
    if lease_id is None:
        # The entry was claimed but this member holds (or held) the item.
        conn.execute(_ADJUST_ENTRY, {"entry_id": entry_id, "d_active": -1, "d_done": 0})
        return "seen", item_id
    claimed = ClaimResult(
        lease_id, item_id, external_id, dict(fields), as_utc(expires_at), reason
    )
    return claimed, item_id


def claim_next(
    *,
    session: Session,
    project: Project,
    member: Member,
    now: datetime,
    ttl_seconds: float,
    rng: RandomState = None,
) -> ClaimResult | NoAssignment:
    """Lease the member's next item (or return their oldest, holding MAX_HELD)."""
    now = _utc(now)
    expires_at = new_lease_expiry(now, ttl_seconds)
    _check_member(session, project, member)
    generator = check_rng(rng)
    found = _claim_state(session, project, member, now)
    if isinstance(found, ClaimResult):
        return found
    policy, caps, state, first = found.policy, found.caps, found.state, found.first
    gold_rate = 0.0 if policy is None else policy.gold_rate
    seen: set[int] = set()
    # The first window is a short prefix of the ranked one: enough unless the
    # caps block its items or other members take them; then the full one.
    size = _FIRST_WINDOW
    attempt = 0
    while attempt < _MAX_WINDOWS:
        if first is not None:  # read with the claim state (PostgreSQL)
            (window, gold), first = first, None
        else:
            window = _window(session, project, member, size=size)
            gold = _gold_mix(session, project, member, gold_rate)
        normal_only, lost, widen = False, 0, False
        while lost < _RACES_PER_WINDOW:
            # A retry on the full window must draw what the first call drew.
            rng_state = generator.bit_generator.state if gold is not None else None
            result = choose_next(
                [candidate for _, candidate in window.values()],
                member_id=member.id,
                seen_item_ids=seen,
                state=state,
                caps=caps,
                now=now,
                rng=generator,
                gold=gold,
            )
            if isinstance(result, NoAssignment):
                if size < DEFAULT_WINDOW and len(window) >= size:
                    if rng_state is not None:
                        generator.bit_generator.state = rng_state
                    widen = True
                    break  # the prefix is used up: load the full window
                if result.reason == "cap_reached" and len(window) >= DEFAULT_WINDOW:
                    # Normal items may wait beyond a window full of hard ones.
                    normal = _window(session, project, member, normal_only=True)
                    if normal and not normal_only:
                        window, normal_only = normal, True
                        continue
                if lost and attempt < _MAX_WINDOWS - 1:
                    break  # the window is stale: reload it
                return result
            entry = window.get(result.item_id) if result.rank is not None else None
            if entry is not None and _conn(session).dialect.name == "postgresql":
                offered = ranked_choices(
                    [candidate for _, candidate in window.values()],
                    seen_item_ids=seen,
                    state=state,
                    caps=caps,
                )
                outcome, item_id = _pg_take_first(
                    session, project, member, result, window, offered, now, expires_at
                )
            else:
                outcome, item_id = (
                    _take(
                        session,
                        project,
                        member,
                        result,
                        None if entry is None else entry[0],
                        now,
                        expires_at,
                    ),
                    result.item_id,
                )
            if isinstance(outcome, ClaimResult):
                return outcome
            lost += 1
            if outcome == "seen" or entry is None:
                seen.add(item_id)
            else:  # another member filled it first
                entry_id, candidate = window[item_id]
                full = max(candidate.target - candidate.done, 0)
                window[item_id] = (entry_id, replace(candidate, active_leases=full))
        if widen:
            size = DEFAULT_WINDOW
            continue
        attempt += 1
    raise ConflictError(
        f"Member {member.name!r} could not claim an item of project {project.name!r}: "
        f"other members took every candidate first, "
        f"{_MAX_WINDOWS * _RACES_PER_WINDOW} times in a row.",
        hint="Retry the request; the queue is very busy right now.",
    )


# ------------------------------------------------------------------ lease changes


def _get_lease(session: Session, lease_id: int) -> Lease:
    lease = session.get(Lease, lease_id, populate_existing=True)
    if lease is None:
        raise NotFoundError(
            f"No lease with id {lease_id!r}.",
            hint="Use the lease_id returned when the item was claimed, or claim an "
            "item first (POST /api/v1/projects/{project}/next).",
        )
    return lease


def _check_open(
    lease: Lease, project: Project, member: Member, now: datetime, verb: str
) -> None:
    """Raise unless ``member`` holds ``lease``, active and unexpired at ``now``."""
    if lease.member_id != member.id:
        raise PermissionDenied(
            f"Lease {lease.id} belongs to member {lease.member_id}; member "
            f"{member.name!r} (id {member.id}) cannot {verb} it.",
            hint=f"Only the member holding a lease can {verb} it. "
            + _next_hint(project),
        )
    if lease.status in (SUBMITTED, SKIPPED, FLAGGED):
        raise ConflictError(
            f"Lease {lease.id} on item {lease.item_id} must be active to {verb} it; "
            f"it was already {lease.status}.",
            hint="Nothing was changed. To retry a submit, send the same idempotency "
            f"key. {_next_hint(project)}",
        )
    view = rules.Lease(
        lease.id, lease.item_id, lease.member_id, as_utc(lease.expires_at)
    )
    if lease.status == EXPIRED or rules.is_expired(view, now):
        raise LeaseExpired(
            f"Lease {lease.id} on item {lease.item_id} expired at "
            f"{view.expires_at.isoformat()} (now {now.isoformat()}); it must be "
            f"active and unexpired to {verb} it.",
            hint=f"Your work on item {lease.item_id} was not saved. "
            + _next_hint(project),
        )


def _held(
    session: Session, lease_id: int, member: Member, now: datetime, verb: str
) -> tuple[Lease, Project]:
    if visible_lease_loaded(session, lease_id):
        # Loaded in this very transaction by the API's lease dependency.
        lease = session.get(Lease, lease_id)
        assert lease is not None
    else:
        lease = _get_lease(session, lease_id)
    project = session.get(Project, lease.project_id)
    assert project is not None  # the foreign key guarantees it
    _check_open(lease, project, member, now, verb)
    return lease, project


def _close(
    session: Session,
    lease_id: int,
    member: Member,
    now: datetime,
    verb: str,
    **values: Any,
) -> tuple[int | None] | None:
    """The conditional UPDATE that takes an active, unexpired lease out of "active".

    Returns the lease's queue entry as the UPDATE found it (a new round may have
    handed the lease to its own entry since the lease was read), or None when no
    active, unexpired lease of ``member`` was there to change.
    """
    if values.keys() == {"status", "finished_at"}:  # submit and skip: prepared
        params = {
            "lease_id": lease_id,
            "b_member_id": member.id,
            "now": now,
            "new_status": values["status"],
            "b_finished_at": values["finished_at"],
        }
        row = _conn(session).execute(_END_LEASE, params).first()
    else:
        row = session.execute(
            update(Lease)
            .where(
                Lease.id == lease_id,
                Lease.member_id == member.id,
                Lease.status == ACTIVE,
                Lease.expires_at > now,
            )
            .values(**values)
            .returning(Lease.queue_entry_id),
            execution_options=_NO_SYNC,
        ).first()
    return None if row is None else (row[0],)


def _lost_race(
    session: Session, lease_id: int, member: Member, now: datetime, verb: str
) -> ConflictError:
    """The error for a lease changed by someone else between our read and write."""
    _held(session, lease_id, member, now, verb)  # raises with the precise reason
    return ConflictError(  # pragma: no cover - the re-check above always raises
        f"Lease {lease_id} changed while member {member.name!r} tried to {verb} it.",
        hint="Retry the request.",
    )


def _end(
    session: Session,
    lease_id: int,
    member: Member,
    now: datetime,
    verb: str,
    status: str,
    **values: Any,
) -> Lease:
    now = _utc(now)
    _held(session, lease_id, member, now, verb)
    closed = _close(
        session, lease_id, member, now, verb, status=status, finished_at=now, **values
    )
    if closed is None:
        raise _lost_race(session, lease_id, member, now, verb)
    (entry_id,) = closed
    if entry_id is not None:
        _adjust_entries(session, Counter([entry_id]), active=-1)
    return _get_lease(session, lease_id)


def skip_lease(
    *, session: Session, lease_id: int, member: Member, now: datetime
) -> Lease:
    """Give the item back: it returns to the queue, never to this member."""
    return _end(session, lease_id, member, now, "skip", SKIPPED)


def flag_lease(
    *,
    session: Session,
    lease_id: int,
    member: Member,
    flag: str,
    note: str | None = None,
    now: datetime,
) -> Lease:
    """End the lease as flagged (ambiguous, guideline_gap, other); it goes to review."""
    if flag not in FLAGS:
        raise InvalidInputError(
            f"A flag must be one of {', '.join(FLAGS)}. Got {flag!r} instead.",
            hint="Pick the flag that says what is wrong with the item, and explain "
            "it in the note.",
        )
    if note is not None and not isinstance(note, str):
        raise InvalidInputError(
            f"A flag's note must be text or None. Got {note!r} instead.",
            hint="Describe the problem in a sentence.",
        )
    return _end(session, lease_id, member, now, "flag", FLAGGED, flag=flag, note=note)


def renew_lease(
    *,
    session: Session,
    lease_id: int,
    member: Member,
    now: datetime,
    ttl_seconds: float,
) -> datetime:
    """Extend an active lease to ``max(expires_at, now + ttl_seconds)``."""
    now = _utc(now)
    lease, _ = _held(session, lease_id, member, now, "renew")
    view = rules.Lease(
        lease.id, lease.item_id, lease.member_id, as_utc(lease.expires_at)
    )
    expires_at = rules.renew(view, now, ttl_seconds).expires_at
    if _close(session, lease_id, member, now, "renew", expires_at=expires_at) is None:
        raise _lost_race(session, lease_id, member, now, "renew")
    return expires_at


# ------------------------------------------------------------------ submit / undo


def _check_key(key: object) -> str | None:
    if key is None:
        return None
    if isinstance(key, str) and 0 < len(key.strip()) <= _KEY_MAX:
        return key
    raise InvalidInputError(
        f"An idempotency key must be a non-empty string of at most {_KEY_MAX} "
        f"characters. Got {key!r} instead.",
        hint="Send a fresh UUID with each new answer and the same one on a retry.",
    )


def _check_time(time_spent_ms: object) -> int | None:
    if time_spent_ms is None:
        return None
    if isinstance(time_spent_ms, int) and not isinstance(time_spent_ms, bool):
        if time_spent_ms >= 0:
            return time_spent_ms
    raise InvalidInputError(
        f"time_spent_ms must be an int >= 0 or None. Got {time_spent_ms!r} instead.",
        hint="Send the milliseconds spent on the item, or leave it out.",
    )


def _replay(
    session: Session, key: str, lease_id: int, member: Member
) -> tuple[Annotation, bool] | None:
    """The annotation already saved under ``key`` (a retried submit), if any."""
    annotation = session.scalar(
        select(Annotation).where(Annotation.idempotency_key == key)
    )
    if annotation is None:
        return None
    if annotation.member_id != member.id or annotation.lease_id != lease_id:
        raise ConflictError(
            f"Idempotency key {key!r} was already used for annotation "
            f"{annotation.id} (lease {annotation.lease_id}, member "
            f"{annotation.member_id}); this submit is for lease {lease_id} by member "
            f"{member.id}.",
            hint="Use a fresh key (e.g. a UUID) for every new answer; reuse a key "
            "only to retry the very same submit.",
        )
    return annotation, False


def _route(
    session: Session,
    project: Project,
    item_id: int,
    target: int,
    rows: Any = None,
) -> Route:
    """Route a pool item over its queue votes and flags under the project's quality
    settings (``labelwise.service.quality``); the final label follows.

    ``rows``: the item's (kind, label, flag) rows of _VOTES_AND_FLAGS when the
    caller read them already (PostgreSQL's submit), else they are read here.
    """
    votes: list[str] = []
    flags: list[str] = []
    conn = _conn(session)
    if rows is None:
        rows = conn.execute(_VOTES_AND_FLAGS, {"item_id": item_id})
    for kind, label, flag in rows:
        if kind == 0:
            votes.append(label)
        flags.append(flag or "")
    decision = decide_item(project, item_id, votes, flags=flags, target=target)
    if decision.kind == "final" and decision.label is not None:
        # set_final_label's upsert, without loading the item and the row back.
        conn.execute(
            _UPSERT_FINAL[conn.dialect.name],
            {
                "item_id": item_id,
                "project_id": project.id,
                "label": encode_label(project, decode_label(project, decision.label)),
                "method": str(decision.method),
                "confidence": decision.confidence,
                "n_annotations": len(votes),
                "updated_at": utcnow(),
            },
        )
    else:
        conn.execute(_DELETE_QUEUE_FINAL, {"item_id": item_id})
    return decision.route


def _gold_check(
    project: Project, role: str, gold_text: str | None, encoded: str
) -> dict[str, Any]:
    """A gold item's answer checked against Item.gold_label (recorded as provenance)."""
    if role != "gold" or gold_text is None:
        return {}
    gold = encode_label(project, decode_label(project, gold_text))
    route = route_item([encoded], gold_label=gold, overlap_target=1)
    return {"gold_correct": route.kind == "final"}


def submit_annotation(
    *,
    session: Session,
    lease_id: int,
    member: Member,
    label: object,
    time_spent_ms: int | None = None,
    idempotency_key: str | None = None,
    now: datetime,
) -> tuple[Annotation, bool]:
    """Save the member's answer under their lease and route the item; replays return.

    A replayed key is looked up only when something fails (the lease is no
    longer open, the input is bad, or the key is taken): a first submit runs
    no extra query for it, and every error keeps its precedence.
    """
    now = _utc(now)
    key = _check_key(idempotency_key)
    try:
        lease, project = _held(session, lease_id, member, now, "submit")
        encoded = encode_label(project, label)
        spent = _check_time(time_spent_ms)
    except LabelwiseError:
        # A saved answer under this key (or a key used elsewhere) wins.
        if key is not None and (found := _replay(session, key, lease_id, member)):
            return found
        raise
    conn = _conn(session)
    if conn.dialect.name == "postgresql":
        return _pg_submit(session, lease, project, member, encoded, spent, key, now)
    role, gold_text, round_id, target, guideline_version = conn.execute(
        _SUBMIT_CONTEXT,
        {
            "item_id": lease.item_id,
            "entry_id": lease.queue_entry_id,
            "project_id": project.id,
        },
    ).one()
    values = _annotation_values(
        lease,
        member,
        encoded,
        spent,
        key,
        now,
        provenance=_gold_check(project, role, gold_text, encoded),
        round_id=round_id,
        guideline_version=guideline_version,
    )
    annotation_id = conn.execute(_INSERT_ANNOTATION[conn.dialect.name], values).scalar()
    if annotation_id is None:  # the key is taken: a replay, or a misused key
        assert key is not None  # only the idempotency key is unique
        if found := _replay(session, key, lease_id, member):
            return found
        raise _lost_race(session, lease_id, member, now, "submit")  # pragma: no cover
    closed = _close(
        session, lease_id, member, now, "submit", status=SUBMITTED, finished_at=now
    )
    if closed is None:
        # Another transaction ended the lease first: a replay of this key, or an error.
        conn.execute(_DELETE_ANNOTATION, {"annotation_id": annotation_id})
        if key is not None and (found := _replay(session, key, lease_id, member)):
            return found
        raise _lost_race(session, lease_id, member, now, "submit") from None
    annotation = _saved_annotation(session, annotation_id, values)
    (entry_id,) = closed
    if entry_id is not None:
        _adjust_entries(session, Counter([entry_id]), active=-1, done=1)
        _route(session, project, lease.item_id, int(target))
    return annotation, True


def _annotation_values(
    lease: Lease,
    member: Member,
    encoded: str,
    spent: int | None,
    key: str | None,
    now: datetime,
    **context: Any,
) -> dict[str, Any]:
    """The columns of a queue answer's annotation row."""
    return {
        "project_id": lease.project_id,
        "item_id": lease.item_id,
        "member_id": member.id,
        "label": encoded,
        "source": QUEUE_SOURCE,
        "reason": lease.reason,
        "time_spent_ms": spent,
        "idempotency_key": key,
        "lease_id": lease.id,
        "created_at": now,
        **context,
    }


def _saved_annotation(
    session: Session, annotation_id: int, values: dict[str, Any]
) -> Annotation:
    """The inserted annotation as a persistent object, without a SELECT: the row
    is exactly what was inserted."""
    annotation = Annotation(id=annotation_id, flag=None, note=None, **values)
    make_transient_to_detached(annotation)
    session.add(annotation)
    return annotation


def _pg_submit(
    session: Session,
    lease: Lease,
    project: Project,
    member: Member,
    encoded: str,
    spent: int | None,
    key: str | None,
    now: datetime,
) -> tuple[Annotation, bool]:
    """submit_annotation's writes on PostgreSQL: _PG_SUBMIT, then the final label.

    The same outcomes in the same order as the SQLite path: a taken key is a
    replay (or a misused key), a lease that another transaction ended first
    removes the fresh annotation.
    """
    conn = _conn(session)
    gold = item_gold(session, lease.item_id)  # read with the lease by the API
    if gold is None:
        role, gold_text = conn.execute(_ITEM_GOLD, {"item_id": lease.item_id}).one()
    else:
        role, gold_text = gold
    provenance = _gold_check(project, role, gold_text, encoded)
    row = conn.execute(
        _PG_SUBMIT,
        {
            "p_project": project.id,
            "p_item": lease.item_id,
            "p_member": member.id,
            "p_label": encoded,
            "p_provenance": provenance,
            "p_entry": lease.queue_entry_id,
            "p_reason": lease.reason,
            "p_time_spent_ms": spent,
            "p_idempotency_key": key,
            "p_lease": lease.id,
            "p_now": now,
        },
    ).first()
    if row is None:  # the key is taken: a replay, or a misused key
        assert key is not None  # only the idempotency key is unique
        if found := _replay(session, key, lease.id, member):
            return found
        raise _lost_race(session, lease.id, member, now, "submit")  # pragma: no cover
    annotation_id, round_id, guideline_version, closed, target, rows = row
    if not closed:
        # Another transaction ended the lease first: a replay of this key, or an error.
        conn.execute(_DELETE_ANNOTATION, {"annotation_id": annotation_id})
        if key is not None and (found := _replay(session, key, lease.id, member)):
            return found
        raise _lost_race(session, lease.id, member, now, "submit") from None
    values = _annotation_values(
        lease,
        member,
        encoded,
        spent,
        key,
        now,
        provenance=provenance,
        round_id=round_id,
        guideline_version=guideline_version,
    )
    annotation = _saved_annotation(session, annotation_id, values)
    if lease.queue_entry_id is not None:
        # The statement's votes are those before its own: this one goes last
        # among the votes (the highest id), before the flags.
        earlier = [tuple(r) for r in rows or ()]
        votes = [r for r in earlier if r[0] == 0]
        votes.append((0, encoded, None))
        votes += [r for r in earlier if r[0] != 0]
        _route(session, project, lease.item_id, int(target), votes)
    return annotation, True


def undo_last(
    *, session: Session, project: Project, member: Member, now: datetime
) -> Annotation:
    """Take back the member's newest answer while its lease runs; the lease reopens."""
    now = _utc(now)
    annotation = session.scalar(
        select(Annotation)
        .join(Lease, Lease.id == Annotation.lease_id)
        .where(
            Annotation.project_id == project.id,
            Annotation.member_id == member.id,
            Annotation.source == QUEUE_SOURCE,
            Lease.status == SUBMITTED,
            Lease.expires_at > now,
        )
        .order_by(Annotation.id.desc())
        .limit(1)
    )
    if annotation is None:
        raise ConflictError(
            f"Member {member.name!r} has no answer in project {project.name!r} to "
            "undo: undo takes back the newest answer while its lease still runs, "
            f"and none is running at {now.isoformat()}.",
            hint="Nothing was changed. Ask a reviewer to correct an older answer.",
        )
    # The entry as the UPDATE finds it: a new round may have taken the lease over.
    reopened = session.execute(
        update(Lease)
        .where(
            Lease.id == annotation.lease_id,
            Lease.status == SUBMITTED,
            Lease.expires_at > now,
        )
        .values(status=ACTIVE, finished_at=None)
        .returning(Lease.queue_entry_id),
        execution_options=_NO_SYNC,
    ).first()
    if reopened is None or not _rowcount(
        session, delete(Annotation).where(Annotation.id == annotation.id)
    ):  # pragma: no cover - needs a concurrent undo
        raise ConflictError(
            f"Answer {annotation.id} changed while member {member.name!r} tried to "
            "undo it.",
            hint="Reload the item and try again.",
        )
    session.expunge(annotation)
    (entry_id,) = reopened
    if entry_id is not None:
        _adjust_entries(session, Counter([entry_id]), active=1, done=-1)
        target = session.scalar(
            select(QueueEntry.target).where(QueueEntry.id == entry_id)
        )
        _route(session, project, annotation.item_id, int(target or 1))
    return annotation


# ------------------------------------------------------------------------- status


def queue_status(
    *, session: Session, project: Project, member: Member | None = None, now: datetime
) -> dict[str, Any]:
    """Counts for the progress line: open entries, active leases, today, caps."""
    now = _utc(now)
    open_entries, remaining = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(QueueEntry.target - QueueEntry.active - QueueEntry.done), 0
            ),
        ).where(
            QueueEntry.project_id == project.id,
            *_HAS_ROOM,
        )
    ).one()
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    leases = (
        select(func.count())
        .select_from(Lease)
        .where(Lease.project_id == project.id, Lease.status == ACTIVE)
        .where(Lease.expires_at > now)
    )
    done = (
        select(func.count())
        .select_from(Annotation)
        .where(
            Annotation.project_id == project.id,
            Annotation.source == QUEUE_SOURCE,
            Annotation.created_at >= day,
        )
    )
    flagged = (
        select(func.count())
        .select_from(Lease)
        .where(Lease.project_id == project.id, Lease.status == FLAGGED)
    )
    status: dict[str, Any] = {
        "project": project.name,
        "open_entries": int(open_entries),
        "remaining": int(remaining),
        "active_leases": int(session.scalar(leases) or 0),
        "flagged": int(session.scalar(flagged) or 0),
        "done_today": int(session.scalar(done) or 0),
        "member": None,
    }
    if member is not None:
        _, caps, state = _caps(session, project, member, now)
        status["member"] = {
            "member_id": member.id,
            "active_leases": int(
                session.scalar(leases.where(Lease.member_id == member.id)) or 0
            ),
            "done_today": int(
                session.scalar(done.where(Annotation.member_id == member.id)) or 0
            ),
            "caps": {
                **caps.to_dict(),
                "hard_today": state.hard_today,
                "normal_today": state.normal_today,
                "hard_this_week": state.hard_this_week,
                "total_this_week": state.total_this_week,
                "hard_allowed": "hard" in allowed_kinds(state, caps),
            },
        }
    return status
