"""Load-test the REST API's queue: N annotators claiming and answering at once.

For each database and each annotator count N it starts from a fresh database
(a SQLite file in a temporary folder, or a PostgreSQL database it creates and
drops), holding one project with the demo labels, ``--items`` pool items (the
838 demo texts repeated under unique ids) and one round that enqueued all of
them, so the queue cannot run dry. It adds N annotators, starts ``labelwise
serve`` on a free port of 127.0.0.1, waits for ``/api/v1/health`` and runs N
simulated annotators (asyncio, one keep-alive connection and token each, a
minimal hand-written HTTP/1.1 client: see :class:`RawClient`) for
``--duration`` seconds::

    POST /projects/{p}/next -> 200 -> POST /leases/{id}/annotation -> again
                            -> 204 -> that annotator stops

Every call's latency (``perf_counter``, client side) and status is recorded;
any 5xx, unexpected status or transport error counts as an error. Then the
server is stopped and the database removed. Prints one markdown row per
(database, think time, N); ``--json OUT`` writes every figure.

    python bench/load.py --db sqlite,postgres --annotators 1,10,50 --duration 20

The project, items and round are made once per database with the CLI
(``labelwise project create``, ``labelwise import``, ``labelwise round``) in a
template, and each N gets a copy of it (a file copy on SQLite, ``CREATE
DATABASE ... TEMPLATE`` on PostgreSQL): a cold-start round over 20,000 items
takes about 35 s and would otherwise be repeated for every N. The annotators
are made in-process with the same use-case as ``labelwise user add`` (one
process start per member would take ~4 s each).

Each client first makes one unmeasured claim and answer (one client after the
other), so connection set-up and first-call costs stay out of the figures.
``--think MS[,MS...]`` runs each count once per think time: with MS > 0 an
annotator holds each item for uniform(0, 2 * MS) ms before answering, as
people do; MS = 0 sends the requests back to back, which measures the server
at saturation. The default runs everything the README reports::

    python bench/load.py        # = --db sqlite,postgres --annotators 1,10,50
                                #   --think 0,1000,2000 --duration 20

The load generator and the server share this machine's cores: client-side
latency includes the client's own scheduling. The CPU seconds of the server,
of PostgreSQL, of the client and of everything else on the machine are
reported, and each run first waits (``--settle``) for the machine to be quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _serve import free_port, labelwise_exe, server_env
from sqlalchemy import create_engine, text

from labelwise.demo import DEMO_LABELS, load_demo
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.members import create_member

PROJECT = "loadbench"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
HEALTH_TIMEOUT_S = 60.0
#: Extra time allowed after --duration for the last requests to finish.
GRACE_S = 60.0
#: An annotator stops after this many errors in a row (a dead server).
MAX_ERRORS_IN_A_ROW = 20
API = "/api/v1"


# ---------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


def child_env(data_dir: Path, *, train_worker: bool = False) -> dict[str, str]:
    """The environment of every labelwise subprocess: a real secret, no dev mode.

    The server's background training worker is off unless ``train_worker``:
    with the default ``retrain_every`` (50) it would retrain over the 20,000
    pool items every few seconds of load, in the serving process, and the run
    would measure that instead of the queue (docs/settings.md: turn it off on
    processes that only serve annotators).
    """
    return server_env(
        LABELWISE_DATA_DIR=str(data_dir),
        LABELWISE_TRAIN_WORKER="1" if train_worker else "0",
    )


def run_cli(args: list[str], env: dict[str, str]) -> str:
    """Run ``labelwise ARGS`` and return its stdout; stop on failure."""
    done = subprocess.run(
        [*labelwise_exe(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"labelwise {' '.join(args[:2])} failed ({done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (no interpolation) of ascending values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return sorted_values[min(int(rank), len(sorted_values)) - 1]


def cpu_snapshot(server_pid: int, database: str | None = None) -> dict[str, float]:
    """CPU seconds so far (Linux /proc): the server process and its children,
    the PostgreSQL backends connected to ``database`` (other users of the
    server are not counted), this process, and all CPUs busy (any process)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        stats[int(entry.name)] = cpu
        if database and raw[raw.index("(") + 1 : raw.rindex(")")] == "postgres":
            # A backend's title: "postgres: [CLUSTER: ]USER DATABASE HOST STATE".
            with suppress(OSError):
                title = (entry / "cmdline").read_bytes().split(b"\0")[0].split()
                if database.encode() in title:
                    postgres += cpu
    server, todo = 0.0, [server_pid]
    while todo:
        current = todo.pop()
        server += stats.get(current, 0.0)
        todo.extend(children.get(current, []))
    jiffies = [float(x) for x in Path("/proc/stat").read_text().split()[1:9]]
    return {
        "server": server,
        "postgres": postgres,
        "client": time.process_time(),
        "busy": (sum(jiffies) - jiffies[3] - jiffies[4]) / tick,  # minus idle, iowait
        "all": sum(jiffies) / tick,
    }


def wait_quiet(max_wait: float, threshold: float = 25.0) -> tuple[float, float]:
    """Wait up to ``max_wait`` s until the CPUs are less than ``threshold`` % busy
    over 2 s (other work on a shared machine); (busy %, seconds waited)."""
    started = time.monotonic()
    while True:
        first = cpu_snapshot(os.getpid())
        time.sleep(2)
        second = cpu_snapshot(os.getpid())
        busy = 100 * (second["busy"] - first["busy"]) / (second["all"] - first["all"])
        waited = time.monotonic() - started
        if busy < threshold or waited >= max_wait:
            if busy >= threshold:
                log(f"the machine is still {busy:.0f} % busy after {waited:.0f} s")
            return busy, waited


# ---------------------------------------------------------------- databases


class Backend:
    """Makes the template database once, then a fresh copy per run."""

    name: str

    def template_url(self) -> str:
        raise NotImplementedError

    def fresh_copy(self, tag: str) -> str:
        raise NotImplementedError

    def drop(self, url: str) -> None:
        raise NotImplementedError

    def sessions(self, url: str) -> int | None:
        """Connections opened to ``url`` so far (None where not known)."""
        return None

    def close(self) -> None:
        pass


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"

    def template_url(self) -> str:
        return f"sqlite:///{self.template}"

    def fresh_copy(self, tag: str) -> str:
        target = self.folder / f"run_{tag}.db"
        # The CLI closed its engine: the WAL was checkpointed into the file.
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.template}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{target}{suffix}")
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.prefix = f"labelwise_load_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tpl"
        self.admin = create_engine(
            self.server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
            isolation_level="AUTOCOMMIT",
        )
        self.created: list[str] = []
        self._create(f'CREATE DATABASE "{self.template}"', self.template)

    def _create(self, sql: str, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))
        self.created.append(name)

    def template_url(self) -> str:
        return f"{self.server}/{self.template}"

    def fresh_copy(self, tag: str) -> str:
        name = f"{self.prefix}_{tag}"
        self._create(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"', name)
        return f"{self.server}/{name}"

    def _drop_name(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def drop(self, url: str) -> None:
        self._drop_name(url.rsplit("/", 1)[1])

    def sessions(self, url: str) -> int | None:
        with self.admin.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            value = conn.execute(
                text("SELECT sessions FROM pg_stat_database WHERE datname = :name"),
                {"name": url.rsplit("/", 1)[1]},
            ).scalar()
        return None if value is None else int(value)

    def close(self) -> None:
        for name in list(self.created):
            with suppress(Exception):
                self._drop_name(name)
        self.admin.dispose()


def write_items(path: Path, count: int) -> None:
    """``count`` pool items: the demo texts over and over, each with a unique id."""
    demo = load_demo()
    texts, ids = demo["text"].tolist(), demo["id"].tolist()
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            j = i % len(texts)
            record = {"id": f"b{i:06d}-{ids[j]}", "text": texts[j]}
            out.write(json.dumps(record) + "\n")


def prepare_template(
    backend: Backend, items: Path, count: int, env: dict[str, str]
) -> dict[str, Any]:
    """Project, items and one round enqueuing all of them, made with the CLI."""
    url = backend.template_url()
    started = time.perf_counter()
    labels = ",".join(DEMO_LABELS)
    run_cli(["project", "create", PROJECT, "--labels", labels, "--db", url], env)
    imported = json.loads(
        run_cli(
            ["import", PROJECT, str(items), "--role", "pool", "--json", "--db", url],
            env,
        )
    )
    if imported["items"] != count:
        raise SystemExit(f"Imported {imported['items']} items, expected {count}.")
    round_ = json.loads(
        run_cli(
            [
                "round",
                PROJECT,
                "--batch-size",
                str(count),
                "--seed",
                "0",
                "--json",
                "--db",
                url,
            ],
            env,
        )
    )
    log(
        f"{backend.name}: template ready in {time.perf_counter() - started:.0f} s "
        f"({imported['items']} items, round selected {round_['selected']}: "
        f"{round_['counts_by_reason']})"
    )
    return {"items": imported["items"], "round": round_}


def add_annotators(url: str, count: int) -> list[str]:
    """``count`` annotators of the project; their API tokens."""
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            return [
                create_member(
                    session=session,
                    name=f"ann{i:03d}",
                    role="annotator",
                    project=PROJECT,
                )[2]
                for i in range(count)
            ]
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the server


class Server:
    """``labelwise serve`` as a subprocess in its own process group."""

    def __init__(
        self,
        url: str,
        port: int,
        workers: int,
        env: dict[str, str],
        log_path: Path,
        *,
        access_log: bool = True,
    ) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [
                *labelwise_exe(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                url,
                "--workers",
                str(workers),
                *([] if access_log else ["--no-access-log"]),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self) -> dict[str, Any]:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.base}{API}/health", timeout=2)
                if answer.status_code == 200:
                    body: dict[str, Any] = answer.json()
                    return body
            time.sleep(0.2)
        self.stop()
        tail = self.log_path.read_text(encoding="utf-8")[-3000:]
        raise SystemExit(f"The server did not become healthy:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._log.close()


# ---------------------------------------------------------------- the load


class TransportError(Exception):
    """The connection failed, closed or timed out mid-request."""


class RawClient:
    """One keep-alive HTTP/1.1 connection to the server, for one annotator.

    httpx costs about 2 ms of CPU per request; the load generator shares the
    machine's cores with the server, so its requests are written and parsed
    by hand here (about 0.1 ms): a request line, three headers, and a
    response read by its Content-Length (the API never streams these).
    """

    def __init__(self, base: str, token: str, timeout: float) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.host, self.port, self.timeout = host, int(port), timeout
        self.auth = f"Authorization: Bearer {token}\r\nHost: {host}:{port}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is not None and self.reader.at_eof():
            # The server closed the idle keep-alive connection (uvicorn: after
            # 5 s, e.g. during think time): open a new one, as httpx would.
            await self.close()
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port
            )
        return self.reader, self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        """(status, body); TransportError on a failed or timed-out exchange."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(method, path, body)
        except (OSError, EOFError, TimeoutError, ValueError, IndexError) as exc:
            await self.close()
            raise TransportError(repr(exc)) from exc

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._connect()
        content = "Content-Type: application/json\r\n" if body else ""
        head = (
            f"{method} {path} HTTP/1.1\r\n{self.auth}{content}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        status_line = await reader.readline()
        if not status_line:
            raise EOFError("the server closed the connection")
        status = int(status_line.split(None, 2)[1])
        length, close = 0, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not expected")
        payload = await reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload


@dataclass
class Calls:
    """What the simulated annotators saw."""

    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    next_status: dict[str, int] = field(default_factory=dict)
    submit_status: dict[str, int] = field(default_factory=dict)
    submits_ok: int = 0
    errors: int = 0
    dry: int = 0  # annotators stopped by a 204
    error_samples: list[str] = field(default_factory=list)
    start: float = 0.0
    submit_times: list[float] = field(default_factory=list)  # perf_counter at 201


def _count(table: dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1


def _error(calls: Calls, what: str) -> None:
    calls.errors += 1
    if len(calls.error_samples) < 10:
        calls.error_samples.append(what[:300])


async def annotator(
    client: RawClient, seed: int, deadline: float, think_ms: float, calls: Calls
) -> None:
    """Claim and answer until ``deadline``; with ``think_ms`` > 0, hold each item
    for uniform(0, 2 * think_ms) ms before answering (after a random start)."""
    rng = random.Random(seed)
    in_a_row = 0
    next_path = f"{API}/projects/{PROJECT}/next"
    if think_ms > 0:
        await asyncio.sleep(rng.uniform(0, think_ms) / 1000)
    while time.perf_counter() < deadline and in_a_row < MAX_ERRORS_IN_A_ROW:
        start = time.perf_counter()
        try:
            status, payload = await client.request("POST", next_path)
        except TransportError as exc:
            calls.next_ms.append((time.perf_counter() - start) * 1000)
            _count(calls.next_status, "transport")
            _error(calls, f"next: {exc}")
            in_a_row += 1
            continue
        calls.next_ms.append((time.perf_counter() - start) * 1000)
        _count(calls.next_status, str(status))
        if status == 204:
            calls.dry += 1
            return
        if status != 200:
            _error(calls, f"next {status}: {payload[:300]!r}")
            in_a_row += 1
            continue
        lease_id = json.loads(payload)["lease_id"]
        spent = rng.randint(500, 20_000)
        if think_ms > 0:
            spent = round(rng.uniform(0, 2 * think_ms))
            await asyncio.sleep(spent / 1000)
        body = json.dumps(
            {
                "label": rng.choice(DEMO_LABELS),
                "time_spent_ms": spent,
                "idempotency_key": uuid.uuid4().hex,
            }
        ).encode()
        start = time.perf_counter()
        try:
            status, payload = await client.request(
                "POST", f"{API}/leases/{lease_id}/annotation", body
            )
        except TransportError as exc:
            calls.submit_ms.append((time.perf_counter() - start) * 1000)
            _count(calls.submit_status, "transport")
            _error(calls, f"submit: {exc}")
            in_a_row += 1
            continue
        calls.submit_ms.append((time.perf_counter() - start) * 1000)
        _count(calls.submit_status, str(status))
        if status == 201:
            calls.submits_ok += 1
            calls.submit_times.append(time.perf_counter())
            in_a_row = 0
        else:
            _error(calls, f"submit {status}: {payload[:300]!r}")
            in_a_row += 1


async def warm_up(client: RawClient, seed: int) -> None:
    me, _ = await client.request("GET", f"{API}/me")
    status, payload = await client.request("POST", f"{API}/projects/{PROJECT}/next")
    if me != 200 or status != 200:
        raise SystemExit(f"Warm-up failed: {me} {status}")
    label = random.Random(-seed).choice(DEMO_LABELS)
    answer, text_ = await client.request(
        "POST",
        f"{API}/leases/{json.loads(payload)['lease_id']}/annotation",
        json.dumps({"label": label}).encode(),
    )
    if answer != 201:
        raise SystemExit(f"Warm-up answer failed: {answer} {text_!r}")


async def run_load(
    base: str, tokens: list[str], duration: float, timeout: float, think_ms: float
) -> tuple[Calls, float]:
    """Run one annotator per token for ``duration`` s; (calls, elapsed seconds)."""
    calls = Calls()
    clients = [RawClient(base, token, timeout) for token in tokens]
    try:
        # Warm-up, not measured: each client opens its connection, checks its
        # token and makes one claim and answer, one client after the other.
        for i, client in enumerate(clients):
            await warm_up(client, i)
        start = time.perf_counter()
        calls.start = start
        deadline = start + duration
        async with asyncio.timeout(duration + timeout + 2 * think_ms / 1000 + GRACE_S):
            async with asyncio.TaskGroup() as group:
                for i, client in enumerate(clients):
                    group.create_task(annotator(client, i, deadline, think_ms, calls))
        return calls, time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.close() for c in clients))


def summarize(calls: Calls, elapsed: float) -> dict[str, Any]:
    next_sorted, submit_sorted = sorted(calls.next_ms), sorted(calls.submit_ms)
    per_second = [0] * (int(elapsed) + 1)
    for moment in calls.submit_times:
        per_second[min(int(moment - calls.start), len(per_second) - 1)] += 1
    return {
        "requests": len(calls.next_ms) + len(calls.submit_ms),
        "next_calls": len(calls.next_ms),
        "submit_calls": len(calls.submit_ms),
        "submits_ok": calls.submits_ok,
        "elapsed_s": elapsed,
        "throughput_submits_per_s": calls.submits_ok / elapsed,
        "next_p50_ms": percentile(next_sorted, 50),
        "next_p99_ms": percentile(next_sorted, 99),
        "next_max_ms": next_sorted[-1] if next_sorted else None,
        "submit_p50_ms": percentile(submit_sorted, 50),
        "submit_p99_ms": percentile(submit_sorted, 99),
        "submit_max_ms": submit_sorted[-1] if submit_sorted else None,
        "next_status": calls.next_status,
        "submit_status": calls.submit_status,
        "errors": calls.errors,
        "error_samples": calls.error_samples,
        "annotators_stopped_by_204": calls.dry,
        "submits_per_second": per_second,
    }


def one_run(
    backend: Backend,
    n: int,
    think: float,
    args: argparse.Namespace,
    env: dict[str, str],
    folder: Path,
) -> dict[str, Any]:
    url = backend.fresh_copy(f"n{n}_t{think:g}")
    server = None
    try:
        tokens = add_annotators(url, n)
        port = args.port or free_port()
        server = Server(
            url,
            port,
            args.workers,
            env,
            folder / f"server_{backend.name}_{n}_{think:g}.log",
            access_log=not args.no_access_log,
        )
        health = server.wait_healthy()
        log(
            f"{backend.name}: N={n}, server pid {server.process.pid} on port "
            f"{port}, think {think:g} ms, running {args.duration:g} s"
        )
        quiet = wait_quiet(args.settle)
        sessions_before = backend.sessions(url)
        database = None if backend.name == "sqlite" else url.rsplit("/", 1)[1]
        before = cpu_snapshot(server.process.pid, database)
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        calls, elapsed = asyncio.run(
            run_load(server.base, tokens, args.duration, args.timeout, think)
        )
        after = cpu_snapshot(server.process.pid, database)
        time.sleep(1)  # PostgreSQL publishes its statistics within a second
        sessions_after = backend.sessions(url)
    finally:
        if server is not None:
            server.stop()
            if args.log_dir is not None:
                args.log_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(server.log_path, args.log_dir)
        backend.drop(url)
    row = {
        "database": backend.name,
        "server_database": health.get("database"),
        "annotators": n,
    }
    row.update(summarize(calls, elapsed))
    row.update(
        {
            "server_workers": args.workers,
            "server_access_log": not args.no_access_log,
            **cpu_figures(before, after),
            "loadavg_before": load_before,
            "busy_before_pct": quiet[0],
            "settle_waited_s": quiet[1],
            "think_ms": think,
            "db_connections_opened": (
                None
                if sessions_before is None or sessions_after is None
                else sessions_after - sessions_before
            ),
        }
    )
    return row


def cpu_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    used = {key: after[key] - before[key] for key in before}
    return {
        "server_cpu_s": used["server"],
        "postgres_cpu_s": used["postgres"],
        "client_cpu_s": used["client"],
        "other_cpu_s": used["busy"]
        - used["server"]
        - used["postgres"]
        - used["client"],
        "machine_busy_pct": 100 * used["busy"] / max(used["all"], 1e-9),
    }


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| database | annotators | think (ms) | requests | throughput (submits/s) "
        "| next p50 / p99 (ms) | submit p50 / p99 (ms) | errors "
        "| CPU s: server / PG / client / other (busy) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['database']} | {r['annotators']} | {r['think_ms']:g} "
            f"| {r['requests']} "
            f"| {r['throughput_submits_per_s']:.1f} "
            f"| {fmt(r['next_p50_ms'])} / {fmt(r['next_p99_ms'])} "
            f"| {fmt(r['submit_p50_ms'])} / {fmt(r['submit_p99_ms'])} "
            f"| {r['errors']} "
            f"| {r['server_cpu_s']:.1f} / {r['postgres_cpu_s']:.1f} / "
            f"{r['client_cpu_s']:.1f} / {r['other_cpu_s']:.1f} "
            f"({r['machine_busy_pct']:.0f} %) |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db",
        default="sqlite,postgres",
        help="sqlite, postgres or both: sqlite,postgres (the default)",
    )
    parser.add_argument(
        "--annotators", default="1,10,50", help="Annotator counts, e.g. 1,10,50."
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="Seconds of load per run."
    )
    parser.add_argument(
        "--items", type=int, default=20_000, help="Pool items (all enqueued)."
    )
    parser.add_argument(
        "--port", type=int, default=0, help="Server port (default: a free one)."
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of labelwise serve."
    )
    parser.add_argument(
        "--pg", default=DEFAULT_PG, help="PostgreSQL server URL (no database)."
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="OUT",
        help="Write every figure here.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="Client timeout of one request, seconds (a timeout is an error).",
    )
    parser.add_argument(
        "--think",
        default="0,1000,2000",
        metavar="MS[,MS...]",
        help="Mean ms an annotator holds an item before answering, one run per "
        "value (default 0,1000,2000; 0: back-to-back requests, the server's "
        "saturation).",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        metavar="S",
        help="Before each run, wait up to S s for the machine to be under 25 %% busy.",
    )
    parser.add_argument(
        "--log-dir", type=Path, default=None, help="Keep the server logs here."
    )
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="Serve with labelwise serve --no-access-log (uvicorn's access log "
        "is on by default).",
    )
    parser.add_argument(
        "--train-worker",
        action="store_true",
        help="Keep the server's background training worker on (retrains every "
        "50 new final labels in the serving process).",
    )
    args = parser.parse_args(argv)
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not args.dbs or set(args.dbs) - {"sqlite", "postgres"}:
        parser.error("--db takes sqlite, postgres or sqlite,postgres")
    try:
        args.counts = [int(n) for n in args.annotators.split(",")]
    except ValueError:
        parser.error("--annotators takes comma-separated integers, e.g. 1,10,50")
    if any(n < 1 for n in args.counts) or args.items < 1 or args.workers < 1:
        parser.error("--annotators, --items and --workers must be positive")
    if not 0 < args.duration <= 600 or not 0 < args.timeout <= 120:
        parser.error("--duration must be in (0, 600] s and --timeout in (0, 120] s")
    try:
        args.thinks = [float(t) for t in str(args.think).split(",") if t.strip()]
    except ValueError:
        parser.error("--think takes comma-separated milliseconds, e.g. 0,1000,2000")
    if not args.thinks:
        parser.error("--think needs at least one value")
    if not all(0 <= t <= 60_000 for t in args.thinks) or not 0 <= args.settle <= 600:
        parser.error("--think must be in [0, 60000] ms and --settle in [0, 600] s")
    if any(n > 200 for n in args.counts):
        parser.error("at most 200 annotators per run")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # On SIGTERM too, unwind: stop the server, drop the databases, clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: list[dict[str, Any]] = []
    templates: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="labelwise_load_") as tmp:
        folder = Path(tmp)
        env = child_env(folder / "data", train_worker=args.train_worker)
        items = folder / "items.jsonl"
        write_items(items, args.items)
        for db in args.dbs:
            backend: Backend = (
                SqliteBackend(folder) if db == "sqlite" else PostgresBackend(args.pg)
            )
            try:
                templates[db] = prepare_template(backend, items, args.items, env)
                for think, n in [(t, n) for t in args.thinks for n in args.counts]:
                    row = one_run(backend, n, think, args, env, folder)
                    rows.append(row)
                    log(table([row]).splitlines()[-1])
                    if row["annotators_stopped_by_204"]:
                        log(
                            "WARNING: the queue ran dry for "
                            f"{row['annotators_stopped_by_204']} annotators"
                        )
            finally:
                backend.close()
    print(table(rows))
    if args.json:
        report = {
            "config": {
                "databases": args.dbs,
                "annotators": args.counts,
                "duration_s": args.duration,
                "items": args.items,
                "server_workers": args.workers,
                "server_access_log": not args.no_access_log,
                "request_timeout_s": args.timeout,
                "think_ms": args.thinks,
            },
            "environment": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "httpx": httpx.__version__,
                "note": "load generator and server share the same machine",
            },
            "templates": templates,
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
