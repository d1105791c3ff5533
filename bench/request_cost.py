"""What one claim + answer costs the API server: CPU ms and SQL statements per pair.

Wall-clock latency on a shared machine is noise; the server's own CPU time per
request and the statements it runs are not. This script drives the ASGI app of
``create_app`` in-process (no sockets, no HTTP client: a hand-made ASGI scope
per request), one request at a time, over a fresh database holding one project
(``--items`` pool items, 20 gold items, one round with the default
``BatchPolicy`` queue rules: 10 % overlap at k = 2, 5 % gold, the default
caps) and ``--annotators`` annotators who take turns::

    POST /api/v1/projects/{p}/next -> 200 -> POST /api/v1/leases/{id}/annotation

For each database it reports, over ``--pairs`` measured pairs (after
``--warmup`` unmeasured ones): CPU ms of this process per pair
(``time.process_time``: the app's event loop and its worker threads, which is
what a ``labelwise serve`` worker would spend), wall ms per pair, the SQL
statements per claim and per answer (SQLAlchemy ``before_cursor_execute``
plus COMMIT; SQLite's BEGIN IMMEDIATE, PostgreSQL's BEGIN and SAVEPOINTs
included, a pool pre-ping not: on PostgreSQL each is a round trip), and on
PostgreSQL the CPU ms per pair of the server backends that served the app's
connections (not of other users of the server). The server's training worker
is off (it would retrain in this process every 50 final labels). The run
repeats ``--repeat`` times, each on a fresh database; medians are shown.

    python bench/request_cost.py --db sqlite,postgres --pairs 1000
    python bench/request_cost.py --db sqlite,postgres --baseline 7e2ce3d

``--baseline REF`` also measures the ``labelwise`` package of git revision
REF (``git archive`` into a temporary folder, run first on the PYTHONPATH in a
subprocess) with this same script, and prints the ratios ``before / after``.
``--profile OUT`` writes a cProfile of the measured pairs (first database).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text

import labelwise
from labelwise.demo import DEMO_LABELS
from labelwise.policy import BatchPolicy
from labelwise.service.api import create_app
from labelwise.service.queue import enqueue_round
from labelwise.service.settings import Settings
from labelwise.service.store import members as members_store
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import Item, Round, Selection

PROJECT = "costbench"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
API = "/api/v1"
GOLD_ITEMS = 20
#: Reasons of the round's selections, in turn: 1 in 5 is hard (caps apply).
REASONS = ("random", "random", "uncertain", "random", "random")


def log(message: str) -> None:
    print(f"[cost] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ databases


@contextmanager
def fresh_database(kind: str, pg: str, folder: Path) -> Iterator[str]:
    """A new empty database URL (SQLite file or PostgreSQL database), removed after."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'cost_{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"labelwise_cost_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        pg.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{pg}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, n_items: int, n_annotators: int) -> list[str]:
    """Project, pool and gold items, one enqueued round and the annotators' tokens."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            project = create_project(
                session=session, name=PROJECT, labels=list(DEMO_LABELS)
            )
            rows: list[dict[str, Any]] = [
                {
                    "project_id": project.id,
                    "external_id": f"{role}-{i}",
                    "role": role,
                    "fields": {"text": f"ticket {i}: my card was charged twice"},
                    "content_hash": hashlib.sha256(f"{role}{i}".encode()).hexdigest(),
                    "source": {},
                    **({"gold_label": json.dumps(DEMO_LABELS[0])} if gold else {}),
                }
                for role, count, gold in (
                    ("pool", n_items, False),
                    ("gold", GOLD_ITEMS, True),
                )
                for i in range(count)
            ]
            session.execute(insert(Item), [r for r in rows if r["role"] == "pool"])
            session.execute(insert(Item), [r for r in rows if r["role"] == "gold"])
            policy = BatchPolicy(components=(), random_fraction=1.0)
            round_ = Round(
                project_id=project.id,
                number=1,
                policy_version=policy.version,
                policy=policy.to_dict(),
                seed=0,
                batch_size=n_items,
            )
            session.add(round_)
            session.flush()
            pool_ids = sorted(
                row.id
                for row in session.execute(
                    text(
                        "SELECT id FROM items WHERE role = 'pool' AND project_id = :p"
                    ),
                    {"p": project.id},
                )
            )
            session.execute(
                insert(Selection),
                [
                    {
                        "round_id": round_.id,
                        "item_id": item_id,
                        "rank": rank,
                        "reason": REASONS[rank % len(REASONS)],
                        "strategy": "random",
                        "score": None,
                    }
                    for rank, item_id in enumerate(pool_ids)
                ],
            )
            enqueue_round(session=session, round=round_)
            return [
                members_store.create_member(
                    session=session,
                    name=f"ann{i:03d}",
                    role="annotator",
                    project=project,
                )[2]
                for i in range(n_annotators)
            ]
    finally:
        engine.dispose()


def backend_cpu_s(pids: set[int]) -> float:
    """CPU seconds so far of the PostgreSQL backends serving our connections
    (other users of the same PostgreSQL server are not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


# ------------------------------------------------------------------ ASGI calls


class Asgi:
    """Calls an ASGI app in-process: one request, the whole body back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(
        self, method: str, path: str, token: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        headers = [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
        ]
        if body:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # pragma: no cover - a disconnect never comes
            return {"type": "http.disconnect"}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


class Statements:
    """Counts the SQL statements an engine runs (a before_cursor_execute listener)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)
        # COMMIT and ROLLBACK go through the DBAPI connection, not a cursor;
        # BEGIN (SQLite's BEGIN IMMEDIATE) and SAVEPOINT are cursor statements,
        # except PostgreSQL's BEGIN, which psycopg sends itself (a round trip):
        # counted at SQLAlchemy's begin event.
        names = ["commit", "rollback"]
        if engine.dialect.name == "postgresql":
            names.append("begin")
        for name in names:
            event.listen(engine, name, self._event)

    def _seen(self, *args: Any) -> None:
        self.count += 1

    def _event(self, *args: Any) -> None:
        self.count += 1


async def drive(
    app: Any, tokens: list[str], warmup: int, pairs: int, profile: Path | None
) -> dict[str, Any]:
    """Warm-up pairs, then ``pairs`` measured ones, annotators taking turns."""
    asgi = Asgi(app)
    engine = app.state.engine
    statements = Statements(engine)
    is_pg = engine.dialect.name == "postgresql"
    backends: set[int] = set()
    if is_pg:
        # Connections opened from now on (the pool's first ones come with the
        # warm-up): remember their server process ids.
        event.listen(
            engine,
            "connect",
            lambda dbapi, _record: backends.add(dbapi.info.backend_pid),
        )
        engine.dispose()
    claim_stmts: list[int] = []
    submit_stmts: list[int] = []
    labels = list(DEMO_LABELS)

    async def pair(i: int, record: bool) -> None:
        token = tokens[i % len(tokens)]
        before = statements.count
        status, body = await asgi.call("POST", f"{API}/projects/{PROJECT}/next", token)
        if status != 200:
            raise SystemExit(f"claim {i}: {status} {body[:300]!r}")
        middle = statements.count
        lease_id = json.loads(body)["lease_id"]
        answer = json.dumps(
            {
                "label": labels[i % len(labels)],
                "time_spent_ms": 1000 + i,
                "idempotency_key": uuid.uuid4().hex,
            }
        ).encode()
        status, body = await asgi.call(
            "POST", f"{API}/leases/{lease_id}/annotation", token, answer
        )
        if status != 201:
            raise SystemExit(f"answer {i}: {status} {body[:300]!r}")
        if record:
            claim_stmts.append(middle - before)
            submit_stmts.append(statements.count - middle)

    for i in range(warmup):
        await pair(i, False)
    profiler = cProfile.Profile() if profile is not None else None
    pg_before = backend_cpu_s(backends) if is_pg else 0.0
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for i in range(warmup, warmup + pairs):
        await pair(i, True)
    if profiler is not None:
        profiler.disable()
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    pg = backend_cpu_s(backends) - pg_before if is_pg else None
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    return {
        "cpu_ms_per_pair": 1000 * cpu / pairs,
        "wall_ms_per_pair": 1000 * wall / pairs,
        "postgres_cpu_ms_per_pair": None if pg is None else 1000 * pg / pairs,
        "statements_per_claim": statistics.mean(claim_stmts),
        "statements_per_claim_max": max(claim_stmts),
        "statements_per_submit": statistics.mean(submit_stmts),
        "statements_per_submit_max": max(submit_stmts),
    }


async def measure_app(
    url: str, tokens: list[str], args: argparse.Namespace, profile: Path | None
) -> dict[str, Any]:
    # No training worker: it would retrain in this process every 50 final labels,
    # and its CPU and statements would count as the requests'.
    settings = Settings(
        database_url=url, secret_key=uuid.uuid4().hex, dev=False, train_worker=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return await drive(app, tokens, args.warmup, args.pairs, profile)


def measure(kind: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Median figures of ``--repeat`` runs, each on a fresh database."""
    runs = []
    for repeat in range(args.repeat):
        with fresh_database(kind, args.pg, folder) as url:
            tokens = seed(url, args.items, args.annotators)
            profile = args.profile if repeat == 0 else None
            runs.append(asyncio.run(measure_app(url, tokens, args, profile)))
        log(f"{kind} run {repeat + 1}: {runs[-1]}")
    row: dict[str, Any] = {"database": kind}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        row[key] = statistics.median(values) if values else None
    row["runs"] = runs
    return row


# ------------------------------------------------------------------ baseline


def run_baseline(ref: str, argv: list[str], folder: Path) -> list[dict[str, Any]]:
    """This script's rows for the labelwise package of git revision ``ref``."""
    repo = Path(__file__).resolve().parent.parent
    tree = folder / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", ref, "labelwise"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    out = folder / "baseline.json"
    # An editable install's import hook would find this tree's labelwise
    # first: drop it, and put the baseline's tree first on the path.
    boot = (
        "import runpy, sys; "
        "sys.meta_path[:] = [f for f in sys.meta_path "
        "if 'editable' not in repr(f).lower()]; "
        f"sys.path.insert(0, {str(tree)!r}); "
        f"sys.argv = [{__file__!r}] + sys.argv[1:]; "
        f"runpy.run_path({__file__!r}, run_name='__main__')"
    )
    args = [a for a in argv if a]
    subprocess.run(
        [sys.executable, "-c", boot, *args, "--json", str(out), "--expect-root", tree],
        check=True,
        stdout=subprocess.DEVNULL,  # its table is printed below, with ratios
    )
    rows: list[dict[str, Any]] = json.loads(out.read_text())["rows"]
    return rows


def strip_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """``argv`` without the options ``names`` (and their values)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in names:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]], label: str) -> list[str]:
    lines = []
    for r in rows:
        lines.append(
            f"| {label} | {r['database']} | {fmt(r['cpu_ms_per_pair'])} "
            f"| {fmt(r['wall_ms_per_pair'])} | {fmt(r['postgres_cpu_ms_per_pair'])} "
            f"| {fmt(r['statements_per_claim'], 1)} "
            f"(max {r['statements_per_claim_max']}) "
            f"| {fmt(r['statements_per_submit'], 1)} "
            f"(max {r['statements_per_submit_max']}) |"
        )
    return lines


HEADER = [
    "| code | database | server CPU ms / pair | wall ms / pair "
    "| PostgreSQL CPU ms / pair | statements / claim | statements / answer |",
    "|---|---|---|---|---|---|---|",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db", default="sqlite,postgres", help="sqlite, postgres or both"
    )
    parser.add_argument("--pairs", type=int, default=1000, help="Measured pairs.")
    parser.add_argument(
        "--warmup", type=int, default=100, help="Unmeasured pairs first."
    )
    parser.add_argument(
        "--annotators", type=int, default=10, help="Members taking turns."
    )
    parser.add_argument(
        "--items", type=int, default=0, help="Pool items (default: enough)."
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs per database (median)."
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL.")
    parser.add_argument(
        "--baseline", default=None, metavar="REF", help="Also measure REF."
    )
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output.")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument(
        "--expect-root", type=Path, default=None, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not args.dbs or set(args.dbs) - {"sqlite", "postgres"}:
        parser.error("--db takes sqlite, postgres or sqlite,postgres")
    if min(args.pairs, args.annotators, args.repeat) < 1 or args.warmup < 0:
        parser.error("--pairs, --annotators and --repeat must be positive")
    # Overlap items take two annotators: a pool of 2x the pairs never runs dry.
    args.items = args.items or 2 * (args.pairs + args.warmup) + 100
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    root = Path(labelwise.__file__).resolve().parent.parent
    if args.expect_root is not None and root != args.expect_root.resolve():
        raise SystemExit(f"labelwise came from {root}, not {args.expect_root}")
    # Argon2 at full cost would take most of the seeding time; tokens matter here.
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    members_store._hasher = lambda: hasher  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="labelwise_cost_") as tmp:
        folder = Path(tmp)
        baseline = None
        if args.baseline:
            log(f"measuring the baseline {args.baseline} first")
            baseline = run_baseline(
                args.baseline,
                strip_options(argv, ("--baseline", "--json", "--profile")),
                folder,
            )
        rows = [measure(kind, args, folder) for kind in args.dbs]
    lines = list(HEADER)
    if baseline is not None:
        lines += table(baseline, args.baseline)
    lines += table(rows, "this tree")
    if baseline is not None:
        lines += [
            "",
            "| database | CPU / pair: before / after "
            "| statements / pair: before / after |",
            "|---|---|---|",
        ]
        for before, after in zip(baseline, rows, strict=True):
            st_before = before["statements_per_claim"] + before["statements_per_submit"]
            st_after = after["statements_per_claim"] + after["statements_per_submit"]
            lines.append(
                f"| {after['database']} "
                f"| {before['cpu_ms_per_pair'] / after['cpu_ms_per_pair']:.2f}x "
                f"| {st_before / st_after:.2f}x |"
            )
    print("\n".join(lines))
    if args.json:
        report = {
            "config": {k: str(v) for k, v in vars(args).items()},
            "labelwise_root": str(root),
            "baseline": baseline,
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
