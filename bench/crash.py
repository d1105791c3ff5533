"""Crash test: SIGKILL ``labelwise serve`` at random moments under N annotators.

One run, on a SQLite file or a PostgreSQL database:

1. a project with ``--items`` pool items is queued in one round (a quarter of
   them need two annotators: overlap 2), and ``--annotators`` annotators get
   API tokens;
2. ``labelwise serve`` starts on a free port, and N simulated annotators
   (asyncio, one ``httpx.AsyncClient`` and token each) claim and answer
   items back to back. Every answer carries a fresh idempotency key; a client
   retries a request through connection errors (the server is down) and
   replays a submit with the **same** key until it gets an answer. A submit
   is *acknowledged* when it got a 2xx: the client records the key and the
   annotation id;
3. meanwhile a killer sends SIGKILL to the server (its whole process group)
   ``--kills`` times, each after a random uniform(``--min-gap``,
   ``--max-gap``) seconds of service, and starts it again at once;
4. after the last restart the annotators run ``--tail`` seconds more and
   stop; the test waits one lease TTL, claims and answers one more item (the
   queue continues), and checks the database:

   - every acknowledged submit is there **exactly once**, under its key, with
     the id the client was given (``found`` must equal ``acknowledged``);
   - no lease has two annotations, no member answered an item twice, no item
     has more annotations than its overlap target (``duplicates`` = 0);
   - every queue entry's counters equal its leases (``active`` = active
     leases, ``done`` = submitted ones), so the queue lost no slot;
   - no lease is still active past its TTL (``stale_leases`` = 0): the claims
     whose answers the kill swallowed were given back.

Submits that were committed but whose answer the kill swallowed are in the
database without an acknowledgement; they are counted
(``committed_unacknowledged``) and are not a failure: the client never
claimed they were saved, and its replay with the same key returns them.

    python bench/crash.py --db sqlite,postgres --annotators 50 --kills 25

The CI runs a small size from ``tests/service/reliability/test_crash.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _serve import free_port, labelwise_exe, server_env
from sqlalchemy import create_engine, func, insert, select, text

from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.queue.service import enqueue_round
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.members import create_member
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.schema import (
    Annotation,
    Item,
    Lease,
    Project,
    QueueEntry,
    Round,
    Selection,
    as_utc,
)

PROJECT = "crashbench"
LABELS = ["bug", "billing", "account", "other"]
API = "/api/v1"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
HEALTH_TIMEOUT_S = 120.0
#: A client gives up on one request after retrying this long (the server is down).
RETRY_FOR_S = 120.0


def log(message: str) -> None:
    print(f"[crash] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the database


def queue_policy(
    *, overlap_k: int = 2, overlap_rate: float = 0.25, caps: CapRule | None = None
) -> BatchPolicy:
    """Random picks, no gold; ``overlap_rate`` of items need ``overlap_k`` people."""
    return BatchPolicy(
        components=(),
        random_fraction=1.0,
        caps=caps if caps is not None else CapRule(min_normal_share=0.0),
        overlap_k=overlap_k,
        overlap_rate=overlap_rate,
        gold_rate=0.0,
        name="crash-bench",
    )


def prepare_database(
    url: str,
    *,
    annotators: int,
    items: int,
    policy: BatchPolicy | None = None,
    hard_every: int = 0,
    seed: int = 0,
) -> dict[str, str]:
    """Migrate ``url``, queue ``items`` items in one round; the annotators' tokens.

    With ``hard_every`` = k > 0, every k-th item is selected as ``uncertain``
    (a "hard" item for the caps); the rest as ``random``.
    """
    policy = policy if policy is not None else queue_policy()
    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            project = Project(
                name=PROJECT,
                labels=LABELS,
                text_field="text",
                fields=[],
                # One hand-made round is what the checks reason about (they
                # read each item's target from its entry): the automatic
                # retrain (every 50 final labels) would add model rounds mid-run.
                settings={"retrain_every": 0},
            )
            session.add(project)
            session.flush()
            item_ids = session.scalars(
                insert(Item).returning(Item.id),
                [
                    {
                        "project_id": project.id,
                        "external_id": f"t{n:06d}",
                        "role": "pool",
                        "fields": {"text": f"Ticket {n}: the invoice total is wrong."},
                        "content_hash": f"{n:064d}",
                        "source": {},
                    }
                    for n in range(items)
                ],
            ).all()
            row = Round(
                project_id=project.id,
                number=1,
                policy_version=policy.version,
                policy=policy.to_dict(),
                seed=seed,
                batch_size=items,
                counts_by_reason={},
            )
            session.add(row)
            session.flush()
            session.execute(
                insert(Selection),
                [
                    {
                        "round_id": row.id,
                        "item_id": item_id,
                        "reason": "uncertain"
                        if hard_every and rank % hard_every == 0
                        else "random",
                        "strategy": "random",
                        "rank": rank,
                    }
                    for rank, item_id in enumerate(item_ids, start=1)
                ],
            )
            enqueue_round(session=session, round=row)
            tokens = {}
            for i in range(annotators):
                name = f"ann{i:03d}"
                tokens[name] = create_member(
                    session=session, name=name, role="annotator", project=project
                )[2]
        return tokens
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the server


class ServeProcess:
    """``labelwise serve`` in its own process group, killed and restarted at will."""

    def __init__(
        self,
        url: str,
        log_path: Path,
        *,
        ttl_seconds: int,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = env if env is not None else serve_env(ttl_seconds)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            out.write(f"--- start {self.starts + 1} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [
                    *labelwise_exe(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--db",
                    self.url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.starts += 1

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def wait_healthy(self) -> None:
        """Poll /health until it answers 200 (fail with the server's output)."""
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"labelwise serve exited with {self.process.returncode}:\n"
                        f"{self.output()}"
                    )
                with suppress(httpx.HTTPError):
                    answer = await client.get(f"{self.base}{API}/health")
                    if answer.status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"labelwise serve never became healthy:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the server's process group and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully (SIGINT), or kill after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def serve_env(ttl_seconds: int) -> dict[str, str]:
    """A real secret, no dev mode, the lease TTL; nothing else of LABELWISE_*."""
    return server_env(
        LABELWISE_LEASE_TTL_SECONDS=str(ttl_seconds), PYTHONUNBUFFERED="1"
    )


# ---------------------------------------------------------------- the clients


@dataclass
class Ack:
    """A submit that got a 2xx: what the client was promised."""

    member: str
    key: str
    annotation_id: int
    lease_id: int
    item_id: int
    status: int


@dataclass
class Traffic:
    """What the simulated annotators saw."""

    acks: list[Ack] = field(default_factory=list)
    claims: int = 0
    retries: int = 0
    replays_answered_200: int = 0
    lost_leases: int = (
        0  # a submit refused: the lease expired while the server was down
    )
    unexpected: list[str] = field(default_factory=list)  # 5xx or any surprise
    exhausted: int = 0


class Unexpected(Exception):
    """The server answered something it never should (a 5xx, a wrong shape)."""


async def _request(
    client: httpx.AsyncClient, method: str, path: str, traffic: Traffic, **kw: Any
) -> httpx.Response:
    """One call, retried through connection errors (the server is down)."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            response = await client.request(method, path, **kw)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            traffic.retries += 1
            await asyncio.sleep(0.05)
            continue
        if response.status_code >= 500:
            raise Unexpected(f"{method} {path}: {response.status_code} {response.text}")
        return response


async def annotate(
    client: httpx.AsyncClient,
    name: str,
    stop: asyncio.Event,
    traffic: Traffic,
    rng: random.Random,
    *,
    submit_client: httpx.AsyncClient | None = None,
) -> None:
    """Claim and answer until ``stop``; ``submit_client`` answers (another server)."""
    answerer = submit_client or client
    while not stop.is_set():
        claim = await _request(
            client, "POST", f"{API}/projects/{PROJECT}/next", traffic
        )
        if claim.status_code == 204:
            traffic.exhausted += 1
            return
        if claim.status_code != 200:
            raise Unexpected(f"claim by {name}: {claim.status_code} {claim.text}")
        traffic.claims += 1
        lease = claim.json()
        key = f"{name}-{uuid.UUID(int=rng.getrandbits(128)).hex}"
        body = {
            "label": rng.choice(LABELS),
            "time_spent_ms": rng.randint(300, 9000),
            "idempotency_key": key,
        }
        path = f"{API}/leases/{lease['lease_id']}/annotation"
        answer = await _request(answerer, "POST", path, traffic, json=body)
        if answer.status_code in (200, 201):
            saved = answer.json()
            if answer.status_code == 200:
                traffic.replays_answered_200 += 1
            traffic.acks.append(
                Ack(
                    member=name,
                    key=key,
                    annotation_id=int(saved["id"]),
                    lease_id=int(lease["lease_id"]),
                    item_id=int(lease["item"]["id"]),
                    status=answer.status_code,
                )
            )
        elif answer.status_code == 409:
            # The lease ran out while the server was down: not saved, and the
            # client was told so. Anything else is a failure.
            code = answer.json()["error"]["code"]
            if code != "lease_expired":
                raise Unexpected(f"submit by {name}: 409 {answer.text}")
            traffic.lost_leases += 1
        else:
            raise Unexpected(f"submit by {name}: {answer.status_code} {answer.text}")


async def _guarded(coro: Any, traffic: Traffic, stop: asyncio.Event) -> None:
    try:
        await coro
    except (Unexpected, httpx.HTTPError) as exc:
        traffic.unexpected.append(repr(exc)[:500])
        stop.set()


# ---------------------------------------------------------------- the checks


@dataclass
class CrashReport:
    """The figures of one run; :meth:`problems` lists what broke a promise."""

    database: str
    annotators: int
    kills: int
    submits_acknowledged: int
    submits_found: int
    duplicates: int
    committed_unacknowledged: int
    replays_answered_200: int
    lost_leases: int
    client_retries: int
    claims: int
    overfilled_items: int
    counter_mismatches: int
    stale_leases: int
    final_claim: int
    final_submit: int
    unexpected: list[str]
    elapsed_s: float
    missing_keys: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = []
        if self.submits_found != self.submits_acknowledged:
            found.append(
                f"{self.submits_acknowledged - self.submits_found} acknowledged "
                f"submits are missing (e.g. {self.missing_keys[:3]})"
            )
        for name in (
            "duplicates",
            "overfilled_items",
            "counter_mismatches",
            "stale_leases",
        ):
            if getattr(self, name):
                found.append(f"{name} = {getattr(self, name)}")
        if self.final_claim != 200 or self.final_submit != 201:
            found.append(
                f"the queue did not continue: claim {self.final_claim}, "
                f"submit {self.final_submit}"
            )
        if self.unexpected:
            found.append(f"unexpected answers: {self.unexpected[:3]}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_database(url: str, acks: list[Ack], now: datetime) -> dict[str, Any]:
    """Compare the acknowledged submits and the queue's counters with the database."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            project_id = session.scalar(
                select(Project.id).where(Project.name == PROJECT)
            )
            rows = session.execute(
                select(
                    Annotation.id,
                    Annotation.idempotency_key,
                    Annotation.lease_id,
                    Annotation.item_id,
                    Annotation.member_id,
                ).where(Annotation.project_id == project_id)
            ).all()
            by_key = Counter(row.idempotency_key for row in rows)
            ids_by_key = {row.idempotency_key: row.id for row in rows}
            missing = [
                ack.key
                for ack in acks
                if by_key.get(ack.key) != 1 or ids_by_key[ack.key] != ack.annotation_id
            ]
            per_lease = Counter(row.lease_id for row in rows)
            per_pair = Counter((row.item_id, row.member_id) for row in rows)
            per_item = Counter(row.item_id for row in rows)
            targets = dict(
                session.execute(
                    select(QueueEntry.item_id, QueueEntry.target).where(
                        QueueEntry.project_id == project_id
                    )
                ).all()
            )
            duplicates = (
                sum(n - 1 for n in per_lease.values() if n > 1)
                + sum(n - 1 for n in per_pair.values() if n > 1)
                + sum(n - 1 for n in by_key.values() if n > 1)
            )
            overfilled = sum(
                1 for item, n in per_item.items() if n > targets.get(item, 1)
            )
            lease_counts = Counter(
                (entry_id, status)
                for entry_id, status in session.execute(
                    select(Lease.queue_entry_id, Lease.status).where(
                        Lease.project_id == project_id
                    )
                )
            )
            mismatches = 0
            for entry_id, active, done in session.execute(
                select(QueueEntry.id, QueueEntry.active, QueueEntry.done).where(
                    QueueEntry.project_id == project_id
                )
            ):
                if (
                    active != lease_counts[(entry_id, "active")]
                    or done != (lease_counts[(entry_id, "submitted")])
                ):
                    mismatches += 1
            stale = sum(
                1
                for (expires_at,) in session.execute(
                    select(Lease.expires_at).where(
                        Lease.project_id == project_id, Lease.status == "active"
                    )
                )
                if as_utc(expires_at) <= now
            )
            acked = {ack.key for ack in acks}
            unacked = sum(1 for key in by_key if key not in acked)
            total = session.scalar(
                select(func.count(Annotation.id)).where(
                    Annotation.project_id == project_id
                )
            )
    finally:
        engine.dispose()
    return {
        "submits_found": len(acks) - len(missing),
        "missing_keys": missing,
        "duplicates": duplicates,
        "overfilled_items": overfilled,
        "counter_mismatches": mismatches,
        "stale_leases": stale,
        "committed_unacknowledged": unacked,
        "annotations": total,
    }


# ---------------------------------------------------------------- one run


@dataclass(frozen=True)
class CrashConfig:
    """The size of one run."""

    annotators: int = 8
    kills: int = 20
    items: int = 3000
    ttl_seconds: int = 8
    min_gap: float = 0.2
    max_gap: float = 1.2
    tail: float = 2.0
    seed: int = 0


async def _final_round(
    base: str, name: str, token: str, traffic: Traffic
) -> tuple[int, int]:
    """One more claim and answer after the storm: the queue continues."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        claim = await client.post(f"{API}/projects/{PROJECT}/next")
        if claim.status_code != 200:
            return claim.status_code, 0
        lease = claim.json()
        key = f"final-{uuid.uuid4().hex}"
        answer = await client.post(
            f"{API}/leases/{lease['lease_id']}/annotation",
            json={"label": LABELS[0], "idempotency_key": key},
        )
        if answer.status_code == 201:
            traffic.acks.append(
                Ack(
                    member=name,
                    key=key,
                    annotation_id=int(answer.json()["id"]),
                    lease_id=int(lease["lease_id"]),
                    item_id=int(lease["item"]["id"]),
                    status=201,
                )
            )
        return claim.status_code, answer.status_code


async def _storm(
    server: ServeProcess, tokens: dict[str, str], config: CrashConfig
) -> tuple[Traffic, int]:
    traffic = Traffic()
    stop = asyncio.Event()
    rng = random.Random(config.seed)
    clients = {
        name: httpx.AsyncClient(
            base_url=server.base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=2.0),
        )
        for name, token in tokens.items()
    }
    kills = 0
    try:
        workers = [
            asyncio.create_task(
                _guarded(
                    annotate(client, name, stop, traffic, random.Random(rng.random())),
                    traffic,
                    stop,
                )
            )
            for name, client in clients.items()
        ]
        for _ in range(config.kills):
            await asyncio.sleep(rng.uniform(config.min_gap, config.max_gap))
            if stop.is_set():
                break
            server.kill()
            kills += 1
            server.start()
            await server.wait_healthy()
        await asyncio.sleep(config.tail)
        stop.set()
        await asyncio.gather(*workers)
    finally:
        stop.set()
        await asyncio.gather(*(client.aclose() for client in clients.values()))
    return traffic, kills


def run_crash(
    url: str, folder: Path, config: CrashConfig, *, database: str = ""
) -> CrashReport:
    """Prepare ``url``, run the storm with kills, check; the report (never raises
    on a broken promise: read :meth:`CrashReport.problems`)."""
    started = time.monotonic()
    tokens = prepare_database(url, annotators=config.annotators, items=config.items)
    server = ServeProcess(url, folder / "serve.log", ttl_seconds=config.ttl_seconds)
    server.start()
    try:
        asyncio.run(server.wait_healthy())
        traffic, kills = asyncio.run(_storm(server, tokens, config))
        # Every lease taken before now has run out after one TTL.
        time.sleep(config.ttl_seconds + 0.5)
        name, token = next(iter(tokens.items()))
        final_claim, final_submit = asyncio.run(
            _final_round(server.base, name, token, traffic)
        )
        checked_at = datetime.now(UTC) - timedelta(seconds=0.5)
    finally:
        server.stop()
    found = check_database(url, traffic.acks, checked_at)
    return CrashReport(
        database=database or url.split(":", 1)[0],
        annotators=config.annotators,
        kills=kills,
        submits_acknowledged=len(traffic.acks),
        submits_found=found["submits_found"],
        duplicates=found["duplicates"],
        committed_unacknowledged=found["committed_unacknowledged"],
        replays_answered_200=traffic.replays_answered_200,
        lost_leases=traffic.lost_leases,
        client_retries=traffic.retries,
        claims=traffic.claims,
        overfilled_items=found["overfilled_items"],
        counter_mismatches=found["counter_mismatches"],
        stale_leases=found["stale_leases"],
        final_claim=final_claim,
        final_submit=final_submit,
        unexpected=traffic.unexpected,
        elapsed_s=round(time.monotonic() - started, 1),
        missing_keys=found["missing_keys"],
    )


# ---------------------------------------------------------------- the command


class _Postgres:
    """A scratch PostgreSQL database, created and dropped."""

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.name = f"labelwise_crash_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(
            self.server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))

    @property
    def url(self) -> str:
        return f"{self.server}/{self.name}"

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def table(reports: list[CrashReport]) -> str:
    lines = [
        "| database | annotators | kills | submits acknowledged | submits found "
        "| duplicates | committed, unacknowledged | lost leases (409) "
        "| stale leases | elapsed (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.database} | {r.annotators} | {r.kills} | {r.submits_acknowledged} "
            f"| {r.submits_found} | {r.duplicates} | {r.committed_unacknowledged} "
            f"| {r.lost_leases} | {r.stale_leases} | {r.elapsed_s:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", help="sqlite, postgres or both.")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--ttl", type=int, default=10, help="Lease TTL, seconds.")
    parser.add_argument("--min-gap", type=float, default=0.5)
    parser.add_argument("--max-gap", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL.")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = parser.parse_args(argv)
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not args.dbs or set(args.dbs) - {"sqlite", "postgres"}:
        parser.error("--db takes sqlite, postgres or sqlite,postgres")
    if args.annotators < 1 or args.kills < 0 or args.items < 1 or args.ttl < 2:
        parser.error("--annotators, --items >= 1, --kills >= 0, --ttl >= 2")
    if not 0 < args.min_gap <= args.max_gap:
        parser.error("need 0 < --min-gap <= --max-gap")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = CrashConfig(
        annotators=args.annotators,
        kills=args.kills,
        items=args.items,
        ttl_seconds=args.ttl,
        min_gap=args.min_gap,
        max_gap=args.max_gap,
        seed=args.seed,
    )
    reports = []
    with tempfile.TemporaryDirectory(prefix="labelwise_crash_") as tmp:
        for db in args.dbs:
            folder = Path(tmp) / db
            folder.mkdir()
            scratch = _Postgres(args.pg) if db == "postgres" else None
            url = scratch.url if scratch else f"sqlite:///{folder / 'crash.db'}"
            try:
                log(f"{db}: {config}")
                report = run_crash(url, folder, config, database=db)
            except BaseException:
                log(f"server output:\n{(folder / 'serve.log').read_text()[-3000:]}")
                raise
            finally:
                if scratch is not None:
                    scratch.drop()
            log(f"{db}: {json.dumps(report.to_dict())}")
            reports.append(report)
            if args.json is not None:
                shutil.copy(folder / "serve.log", args.json.with_suffix(f".{db}.log"))
    print(table(reports))
    if args.json is not None:
        args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    broken = [f"{r.database}: {p}" for r in reports for p in r.problems()]
    for problem in broken:
        log(f"BROKEN PROMISE {problem}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
