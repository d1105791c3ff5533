"""Helpers of the browser tests: the seeded database, the server, its log."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.loop import run_round
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.members import add_to_project, create_member
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.projects import create_project, get_project
from labelwise.service.store.schema import Item, Project

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).parent / "screenshots"
LABELS = ["bug", "billing", "account", "other"]
SCRIPT_TEXT = "<script>alert(1)</script>"
IMG_TEXT = "<img src=x onerror=alert(1)>"
#: Markup pasted into the disputes items; the review page must show it as text.
URGENT = "<b>urgent</b>"


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_output(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else "(no output)"


def wait_for_server(
    process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30
) -> None:
    """Poll ``url`` until it answers 200; fail with the server's output if not."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"labelwise serve exited early with status {process.returncode}\n"
                f"output:\n{server_output(log)}"
            )
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    raise AssertionError(
        f"Timed out after {timeout}s waiting for {url}: {last_error}\n"
        f"output:\n{server_output(log)}"
    )


def _policy(*, overlap_k: int, overlap_rate: float) -> BatchPolicy:
    """Random picks only, no caps on hard items, no gold: a predictable queue."""
    return BatchPolicy(
        components=(),
        random_fraction=1.0,
        caps=CapRule(min_normal_share=0.0),
        overlap_k=overlap_k,
        overlap_rate=overlap_rate,
        gold_rate=0.0,
        name="browser-tests",
    )


def _add_items(session: Any, project: Project, texts: list[str]) -> None:
    session.execute(
        insert(Item),
        [
            {
                "project_id": project.id,
                "external_id": f"{project.name}-{n}",
                "role": "pool",
                "fields": {"text": text},
                "content_hash": hashlib.sha256(text.encode()).hexdigest(),
                "source": {},
            }
            for n, text in enumerate(texts)
        ],
    )


def _ticket_texts() -> list[str]:
    plain = [
        f"Ticket {n}: the invoice page shows the wrong total for order {1000 + n}."
        for n in range(18)
    ]
    return [*plain[:5], SCRIPT_TEXT, *plain[5:12], IMG_TEXT, *plain[12:]]


@dataclass
class Server:
    """The running server and what the fixture put in its database."""

    url: str
    db_url: str
    log: Path
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, member: str, **kwargs: Any) -> httpx.Response:
        """Call ``/api/v1{path}`` with ``member``'s API token."""
        headers = {"Authorization": f"Bearer {self.tokens[member]}"}
        return httpx.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=10, **kwargs
        )

    def session(self) -> Any:
        """A read session on the server's database (a context manager)."""
        engine = make_engine(self.db_url)
        return _DisposingSession(engine)


class _DisposingSession:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.session: Any = None

    def __enter__(self) -> Any:
        self.session = make_sessionmaker(self.engine)()
        return self.session

    def __exit__(self, *exc: object) -> None:
        self.session.close()
        self.engine.dispose()


def seed(db_url: str) -> tuple[dict[str, str], dict[str, str]]:
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    passwords: dict[str, str] = {}
    tokens: dict[str, str] = {}
    with transaction(factory) as session:
        tickets = create_project(
            session=session,
            name="tickets",
            labels=LABELS,
            text_field="text",
            guideline="Pick the team that should answer the ticket. "
            "Flag tickets that fit no label.",
        )
        _add_items(session, tickets, _ticket_texts())
        inert = create_project(
            session=session, name="inert", labels=LABELS, text_field="text"
        )
        _add_items(session, inert, [SCRIPT_TEXT, IMG_TEXT])
        disputes = create_project(
            session=session, name="disputes", labels=LABELS, text_field="text"
        )
        _add_items(
            session,
            disputes,
            [
                f"Dispute {n}: charged twice, then locked out. {URGENT}"
                for n in range(4)
            ],
        )
        people = [
            ("ana", "annotator", [tickets, inert]),
            ("lee", "lead", [tickets, disputes]),
            ("bob", "annotator", [disputes]),
            ("cat", "annotator", [disputes]),
            ("rita", "reviewer", [disputes]),
        ]
        for name, role, projects in people:
            member, password, token = create_member(
                session=session, name=name, role=role, project=projects[0]
            )
            for extra in projects[1:]:
                add_to_project(session=session, member=member, project=extra)
            passwords[name], tokens[name] = password, token
    for name, n_items, overlap in [("tickets", 20, 0.0), ("inert", 2, 0.0)]:
        with transaction(factory) as session:
            project = get_project(session=session, name=name)
            run_round(
                session=session,
                project=project,
                batch_size=n_items,
                policy=_policy(overlap_k=2, overlap_rate=overlap),
                seed=1,
            )
    with transaction(factory) as session:
        project = get_project(session=session, name="disputes")
        run_round(
            session=session,
            project=project,
            batch_size=4,
            policy=_policy(overlap_k=2, overlap_rate=1.0),
            seed=1,
        )
    engine.dispose()
    return passwords, tokens
