"""A labelling project whose truth is known, run through the real loop.

:func:`simulate_labeling` creates a tabular project where one class is rare
(``x0 > threshold``), imports pool, validation and gold items, then runs
rounds with :func:`~labelwise.service.loop.run_round` and answers every
queued item through the queue use-cases (``claim_next`` then
``submit_annotation``) with the true label, one annotator erring at a known
rate. Margin sampling finds the rare class near its boundary far faster than
random picks, so with the default policy the loop beats its control slice;
with the ``random`` policy every pick is random and it cannot.

The tests, the screenshot script and the report's docs use it; it is the
"simulation that knows" what the report's verdict must be.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from labelwise._typing import RandomState
from labelwise._validation import check_rng

__all__ = ["ScenarioResult", "rare_class_records", "simulate_labeling"]

LABELS = ("common", "rare")
#: Seconds an answer takes, median, per reason (hard picks take longer).
_SECONDS = {"uncertain": 9.0, "diverse": 6.0, "random": 5.0, "gold": 5.0}


@dataclass(frozen=True)
class ScenarioResult:
    """What the simulation did: rounds run and answers given, by annotator."""

    project: str
    rounds: int
    answers: dict[str, int]
    truth: dict[str, str]


def rare_class_records(
    n: int, *, rng: np.random.Generator, prefix: str, threshold: float = 1.5
) -> list[dict[str, Any]]:
    """``n`` records ``{"id", "x0", "x1", "label"}``, "rare" where x0 > threshold."""
    x = rng.normal(size=(n, 2))
    return [
        {
            "id": f"{prefix}{i}",
            "x0": round(float(a), 5),
            "x1": round(float(b), 5),
            "label": LABELS[1] if a > threshold else LABELS[0],
        }
        for i, (a, b) in enumerate(x)
    ]


def _write(folder: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _answer_all(
    factory: sessionmaker[Session],
    project_name: str,
    members: list[str],
    truth: dict[str, str],
    *,
    now: datetime,
    noisy: str | None,
    error_rate: float,
    rng: np.random.Generator,
    counts: dict[str, int],
) -> datetime:
    """Every member answers until the queue has nothing left for anyone."""
    from labelwise.service.queue.service import (
        ClaimResult,
        claim_next,
        submit_annotation,
    )
    from labelwise.service.store.engine import transaction
    from labelwise.service.store.members import get_member
    from labelwise.service.store.projects import get_project

    idle: set[str] = set()
    while len(idle) < len(members):
        for name in members:
            if name in idle:
                continue
            with transaction(factory) as session:
                project = get_project(session=session, name=project_name)
                member = get_member(session=session, name=name)
                claim = claim_next(
                    session=session,
                    project=project,
                    member=member,
                    now=now,
                    ttl_seconds=600,
                    rng=rng,
                )
                if not isinstance(claim, ClaimResult):
                    idle.add(name)
                    continue
                label = truth[claim.external_id]
                if name == noisy and rng.random() < error_rate:
                    label = LABELS[1 - LABELS.index(label)]
                median = _SECONDS.get(claim.reason, 6.0)
                seconds = float(rng.lognormal(np.log(median), 0.4))
                now += timedelta(seconds=seconds + 1)
                submit_annotation(
                    session=session,
                    lease_id=claim.lease_id,
                    member=member,
                    label=label,
                    time_spent_ms=int(seconds * 1000),
                    now=now,
                )
                counts[name] = counts.get(name, 0) + 1
    return now


def simulate_labeling(
    factory: sessionmaker[Session],
    *,
    name: str = "rare-events",
    policy: str = "default",
    rounds: int = 8,
    batch_size: int = 40,
    n_pool: int = 2000,
    n_validation: int = 300,
    n_gold: int = 20,
    n_seed_labels: int = 20,
    late_pool: int = 0,
    late_shift: float = 0.0,
    error_rate: float = 0.05,
    start: datetime | None = None,
    days_per_round: float = 3.0,
    threshold: float = 1.5,
    rng: RandomState = 0,
) -> ScenarioResult:
    """Create project ``name`` and run ``rounds`` labelled rounds of ``policy``.

    ``n_seed_labels`` pool items are imported labeled (the seed set).
    ``late_pool`` more pool items arrive in a second import before the last
    round, their ``x0`` shifted by ``late_shift`` (a drift the report should
    see when the shift is large: more of them are rare, near the boundary).
    Annotator ``ben`` errs at ``error_rate``.
    """
    from labelwise.service.io.importer import import_file
    from labelwise.service.loop import run_round
    from labelwise.service.store.engine import transaction
    from labelwise.service.store.members import create_member
    from labelwise.service.store.projects import create_project, get_project

    generator = check_rng(rng)
    moment = start or datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
    pool = rare_class_records(n_pool, rng=generator, prefix="p", threshold=threshold)
    validation = rare_class_records(
        n_validation, rng=generator, prefix="v", threshold=threshold
    )
    gold = rare_class_records(n_gold, rng=generator, prefix="g", threshold=threshold)
    truth = {r["id"]: r["label"] for r in pool + validation + gold}
    seeded = [dict(r) for r in pool[:n_seed_labels]]
    unlabeled = [
        {k: v for k, v in r.items() if k != "label"} for r in pool[n_seed_labels:]
    ]
    members = ["ana", "ben"]
    with tempfile.TemporaryDirectory(prefix="labelwise-scenario-") as folder:
        where = Path(folder)
        with transaction(factory) as session:
            project = create_project(
                session=session, name=name, labels=list(LABELS), fields=["x0", "x1"]
            )
            for role, records in (
                ("pool", seeded + unlabeled),
                ("validation", validation),
                ("gold", gold),
            ):
                import_file(
                    session=session,
                    project=project,
                    path=_write(where, role, records),
                    role=role,
                )
            create_member(session=session, name="lee", role="lead", project=project)
            for member in members:
                create_member(
                    session=session, name=member, role="annotator", project=project
                )
        counts: dict[str, int] = {}
        for number in range(rounds):
            if late_pool and number == rounds - 1:
                late = rare_class_records(
                    late_pool, rng=generator, prefix="late", threshold=threshold
                )
                for record in late:
                    record["x0"] = round(record["x0"] + late_shift, 5)
                    record["label"] = LABELS[int(record["x0"] > threshold)]
                truth.update({r["id"]: r["label"] for r in late})
                with transaction(factory) as session:
                    import_file(
                        session=session,
                        project=get_project(session=session, name=name),
                        path=_write(
                            where,
                            "late",
                            [
                                {k: v for k, v in r.items() if k != "label"}
                                for r in late
                            ],
                        ),
                        role="pool",
                    )
            with transaction(factory) as session:
                run_round(
                    session=session,
                    project=get_project(session=session, name=name),
                    batch_size=batch_size,
                    policy=policy,
                    seed=int(generator.integers(0, 2**31 - 1)),
                )
            moment = _answer_all(
                factory,
                name,
                members,
                truth,
                now=moment,
                noisy="ben",
                error_rate=error_rate,
                rng=generator,
                counts=counts,
            )
            moment += timedelta(days=days_per_round)
    return ScenarioResult(project=name, rounds=rounds, answers=counts, truth=truth)
