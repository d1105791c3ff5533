"""Time releases (create, diff, rollback, export) and a training job, on a big project.

Builds a SQLite project of ``--n`` tabular pool items (``--labeled`` of them with
final labels) plus 500 validation items, then times, each in its own
transaction: ``create_release`` (snapshot, manifest, training the release's
model), a second release after relabelling 1 % of the items, ``diff_releases``,
``rollback_to_release`` and a JSONL export of the release; and one training job
(plan outside the write lock, then the commit that swaps the queue), reporting
how long the write transaction held the lock.

    nice -n 19 python bench/releases.py [--n 50000] [--labeled 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select, update

from labelwise.service.io.exporter import write_export
from labelwise.service.loop.jobs import claim_job, request_training
from labelwise.service.loop.releases import (
    create_release,
    diff_releases,
    get_release,
    iter_release_rows,
    rollback_to_release,
)
from labelwise.service.loop.rounds import commit_round, plan_round
from labelwise.service.store.engine import (
    make_engine,
    make_sessionmaker,
    read_only,
    transaction,
)
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.projects import create_project, get_project
from labelwise.service.store.schema import FinalLabel, Item, utcnow


def _seed(factory, n: int, labeled: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=n + 500)
    X = rng.normal(size=(n + 500, 4)) + 2.0 * y[:, None]
    with transaction(factory) as session:
        project = create_project(
            session=session,
            name="bench",
            labels=["a", "b"],
            fields=["f0", "f1", "f2", "f3"],
        )
        rows = [
            {
                "project_id": project.id,
                "external_id": f"i{i}",
                "role": "pool" if i < n else "validation",
                "fields": {f"f{j}": float(X[i, j]) for j in range(4)},
                "content_hash": hashlib.sha256(str(i).encode()).hexdigest(),
                "source": {},
            }
            for i in range(n + 500)
        ]
        ids: list[int] = []
        for start in range(0, len(rows), 5000):
            ids += session.scalars(
                insert(Item).returning(Item.id, sort_by_parameter_order=True),
                rows[start : start + 5000],
            ).all()
        finals = [
            {
                "item_id": item_id,
                "project_id": project.id,
                "label": '"b"' if y[i] else '"a"',
                "method": "seed",
            }
            for i, item_id in enumerate(ids)
            if i < labeled or i >= n
        ]
        for start in range(0, len(finals), 5000):
            session.execute(insert(FinalLabel), finals[start : start + 5000])


def _timed(label: str, results: list[tuple[str, float]], work):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = work()
    results.append((label, time.perf_counter() - start))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--labeled", type=int, default=20_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="labelwise-bench-releases-"))
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    upgrade(engine)
    factory = make_sessionmaker(engine)
    _seed(factory, args.n, args.labeled)
    results: list[tuple[str, float]] = []

    def release() -> str:
        with transaction(factory) as session:
            project = get_project(session=session, name="bench")
            return create_release(session=session, project=project).release_id

    _timed("create_release (first: trains its model)", results, release)
    with transaction(factory) as session:
        flip = session.scalars(
            select(FinalLabel.item_id).limit(args.labeled // 100)
        ).all()
        session.execute(
            update(FinalLabel).where(FinalLabel.item_id.in_(flip)).values(label='"a"')
        )
    _timed("create_release (second; 1 % set to a)", results, release)

    def diff() -> dict[str, int]:
        with read_only(factory) as session:
            project = get_project(session=session, name="bench")
            return diff_releases(session=session, project=project, a="r1", b="r2")[
                "counts"
            ]

    counts = _timed("diff_releases r1 r2", results, diff)

    def rollback() -> dict[str, object]:
        with transaction(factory) as session:
            project = get_project(session=session, name="bench")
            return rollback_to_release(
                session=session, project=project, release_id="r1"
            )

    _timed("rollback_to_release r1", results, rollback)

    def export() -> int:
        with read_only(factory) as session:
            project = get_project(session=session, name="bench")
            row = get_release(session=session, project=project, release_id="r2")
            pages = iter_release_rows(session=session, project=project, release=row)
            return write_export(
                pages, project=project, path=folder / "r2.jsonl", format="jsonl"
            )

    _timed("export release r2 (JSONL)", results, export)

    with transaction(factory) as session:
        project = get_project(session=session, name="bench")
        job, _ = request_training(session=session, project=project, trigger="cli")
        claim_job(session=session, worker="bench", now=utcnow(), job_id=job.id)

    def plan():  # type: ignore[no-untyped-def]
        with read_only(factory) as session:
            project = get_project(session=session, name="bench")
            return plan_round(session=session, project=project, batch_size=100, seed=0)

    planned = _timed("training job: plan (read-only, no lock)", results, plan)

    def commit() -> int:
        with transaction(factory) as session:
            project = get_project(session=session, name="bench")
            return commit_round(session=session, project=project, plan=planned).selected

    _timed("training job: commit + queue swap (write lock)", results, commit)
    engine.dispose()
    print(
        f"n={args.n} pool items, {args.labeled} labeled, 500 validation; diff {counts}"
    )
    print("| step | seconds |\n|---|---|")
    for label, seconds in results:
        print(f"| {label} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
