"""The caps counts the store sums in SQL equal the pure rule ``cap_state``.

``claim_next`` and ``queue_status`` never load a member's week of leases:
one aggregate query counts them over ``cap_windows(now)``. Here random lease
histories (hard, normal and gold reasons, times around the day and week
bounds, other members' and other projects' leases mixed in) are written to
SQLite and PostgreSQL, and the counts ``queue_status`` reports are compared
with ``cap_state`` over the leases of the last ``CAP_DAYS`` days, for both
``weekly_reset`` settings.
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.queue import cap_state, queue_status
from labelwise.service.queue.service import CAP_DAYS
from labelwise.service.store.engine import transaction
from labelwise.service.store.schema import Item, Lease, Member, Project, Round

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)  # a Wednesday
REASONS = ("random", "uncertain", "committee", "gold", "diverse")
N_ITEMS = 40


def _world(factory, weekly_reset: bool) -> tuple[int, int, int]:
    """Projects p and q, members ann and bob, items, and p's round policy."""
    with transaction(factory) as session:
        ids = []
        for name in ("p", "q"):
            project = Project(
                name=name, labels=["a", "b"], text_field="text", fields=[], settings={}
            )
            session.add(project)
            session.flush()
            ids.append(project.id)
        session.execute(
            insert(Item),
            [
                {
                    "project_id": ids[0],
                    "external_id": f"i{n}",
                    "role": "pool",
                    "fields": {"text": str(n)},
                    "content_hash": f"h{n}",
                    "source": {},
                }
                for n in range(N_ITEMS)
            ],
        )
        spec = BatchPolicy(
            components=(),
            random_fraction=1.0,
            caps=CapRule(min_normal_share=0.0, weekly_reset=weekly_reset),
        )
        session.add(
            Round(
                project_id=ids[0],
                number=1,
                policy_version=spec.version,
                policy=spec.to_dict(),
                seed=0,
                batch_size=1,
            )
        )
        members = [Member(name=name, role="annotator") for name in ("ann", "bob")]
        session.add_all(members)
        session.flush()
        return ids[0], members[0].id, members[1].id


events = st.lists(
    st.tuples(
        # minutes from NOW: 9 days back to 2 days ahead, bounds well covered
        st.integers(-9 * 24 * 60, 2 * 24 * 60),
        st.sampled_from(REASONS),
        st.sampled_from(("ann", "bob")),
    ),
    max_size=N_ITEMS,
)


@pytest.mark.parametrize("weekly_reset", [True, False])
def test_sql_cap_counts_equal_cap_state(session_factory, weekly_reset):
    project_id, ann, bob = _world(session_factory, weekly_reset)
    caps = CapRule(min_normal_share=0.0, weekly_reset=weekly_reset)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(history=events, now_shift=st.integers(-3 * 24 * 60, 3 * 24 * 60))
    def check(history, now_shift):
        now = NOW + timedelta(minutes=now_shift)
        with transaction(session_factory) as session:
            session.execute(delete(Lease))
            rows = [
                {
                    "project_id": project_id,
                    "item_id": item_id,
                    "member_id": ann if who == "ann" else bob,
                    "reason": reason,
                    "status": "submitted",
                    "created_at": NOW + timedelta(minutes=offset),
                    "expires_at": NOW + timedelta(minutes=offset + 10),
                }
                for item_id, (offset, reason, who) in enumerate(history, start=1)
            ]
            if rows:
                session.execute(insert(Lease), rows)
            status = queue_status(
                session=session,
                project=session.get(Project, project_id),
                member=session.get(Member, ann),
                now=now,
            )
        since = now - timedelta(days=CAP_DAYS)
        mine = [
            (NOW + timedelta(minutes=offset), reason)
            for offset, reason, who in history
            if who == "ann" and NOW + timedelta(minutes=offset) >= since
        ]
        expected = cap_state(mine, now, weekly_reset=caps.weekly_reset)
        got = status["member"]["caps"]
        assert (
            got["hard_today"],
            got["normal_today"],
            got["hard_this_week"],
            got["total_this_week"],
        ) == (
            expected.hard_today,
            expected.normal_today,
            expected.hard_this_week,
            expected.total_this_week,
        )
        assert got["weekly_reset"] is weekly_reset

    check()
