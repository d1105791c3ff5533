"""docs/errors.md is true: every entry is produced for real and reads as documented.

Each catalogue row is ``| `id` | bad input | answer | `excerpt` |``. For every
id a case below makes that bad input happen (a file through ``labelwise
import``, a request to the API or the UI, a CLI call) and returns what the user
got: the answer (``exit N``, ``STATUS code`` or ``STATUS``) and the text shown.
The test checks the answer equals the row's and the row's excerpt is in the
text, and that the catalogue and the cases list the same ids. Bad input never
writes: the cases that could write check that nothing was.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apitools import API, World, make_settings, truncate_postgres
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from labelwise.cli import app as cli_app
from labelwise.service.api import create_app
from labelwise.service.queue.service import claim_next
from labelwise.service.store import members as members_store
from labelwise.service.store.engine import transaction
from labelwise.service.store.members import add_to_project
from labelwise.service.store.schema import (
    Annotation,
    Item,
    Member,
    PoolSource,
    Project,
)

CATALOGUE = Path(__file__).resolve().parents[3] / "docs" / "errors.md"
ROW = re.compile(r"^\| `([a-z0-9-]+)` \|[^|]+\| ([^|]+?) \| `(.+)` \|\s*$")
runner = CliRunner()
#: The upload limit of the catalogue's app (the default is 200 MiB).
UPLOAD_LIMIT = 64 * 1024


@dataclass
class Env:
    client: TestClient
    world: World
    url: str
    tmp: Path

    def api(self, method: str, path: str, who: str | None = "ana", **kw):
        headers = {**self.world.headers(who), **kw.pop("headers", {})}
        return self.client.request(method, API + path, headers=headers, **kw)

    def lease(self, who: str = "ana", *, ago: float = 0.0, ttl: float = 900) -> int:
        """A lease of ``who`` claimed ``ago`` seconds ago with ``ttl``."""
        with transaction(self.world.factory) as session:
            result = claim_next(
                session=session,
                project=session.scalar(select(Project).where(Project.name == "cat")),
                member=session.scalar(select(Member).where(Member.name == who)),
                now=datetime.now(UTC) - timedelta(seconds=ago),
                ttl_seconds=ttl,
            )
        assert result, result
        return result.lease_id

    def rows(self) -> tuple[int, int]:
        with transaction(self.world.factory) as session:
            return (
                session.scalar(select(func.count(Item.id))) or 0,
                session.scalar(select(func.count(Annotation.id))) or 0,
            )

    def cli(self, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
        result = runner.invoke(cli_app, list(args), env=env)
        return f"exit {result.exit_code}", result.output

    def import_file(self, name: str, content: bytes, *extra: str) -> tuple[str, str]:
        path = self.tmp / name
        path.write_bytes(content)
        before = self.rows()
        answer = self.cli(
            "import", "cat", str(path), "--role", "pool", "--db", self.url, *extra
        )
        assert self.rows() == before, "a refused import wrote something"
        return answer


def answer(response) -> tuple[str, str]:
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            code = body["error"]["code"]
            text = f"{body['error']['message']} {body['error']['hint'] or ''}"
            return f"{response.status_code} {code}", text
    extra = " ".join(
        f"{k}: {v}" for k, v in response.headers.items() if k.startswith("x-labelwise")
    )
    return str(response.status_code), f"{response.text} {extra}"


CASES: dict[str, Callable[[Env], tuple[str, str]]] = {}


def case(name: str):
    def register(func):
        CASES[name] = func
        return func

    return register


# ------------------------------------------------------------------ files

GOOD = b'{"id": "ok-1", "text": "fine", "label": "bug"}\n'


@case("import-no-such-file")
def _(env):
    return env.cli(
        "import", "cat", str(env.tmp / "nope.csv"), "--role", "pool", "--db", env.url
    )


@case("import-unknown-suffix")
def _(env):
    return env.import_file("items.txt", GOOD)


@case("import-invalid-utf8")
def _(env):
    return env.import_file("latin1.csv", b"id,text,label\n1,caf\xe9,ham\n")


@case("import-broken-json")
def _(env):
    return env.import_file("cut.jsonl", GOOD + b'{"id": "b", "text": "y"\n')


@case("import-nan")
def _(env):
    return env.import_file("nan.jsonl", b'{"id": "n", "text": NaN}\n')


@case("import-unknown-label")
def _(env):
    return env.import_file("eggs.jsonl", b'{"id": "e", "text": "x", "label": "eggs"}\n')


@case("import-missing-text")
def _(env):
    return env.import_file("notext.jsonl", b'{"id": "m", "label": "bug"}\n')


@case("import-duplicate-id")
def _(env):
    return env.import_file("twice.jsonl", GOOD + GOOD.replace(b"fine", b"again"))


@case("import-id-exists")
def _(env):
    return env.import_file("exists.jsonl", b'{"id": "cat-0", "text": "again"}\n')


@case("import-csv-header")
def _(env):
    return env.import_file("header.csv", b"id,id,label\n1,2,ham\n")


@case("import-not-parquet")
def _(env):
    return env.import_file("cut.parquet", b"PAR1 and then nothing")


@case("import-label-studio-shape")
def _(env):
    return env.import_file("tasks.json", b'{"data": 1}')


@case("import-unknown-project")
def _(env):
    path = env.tmp / "ok.jsonl"
    path.write_bytes(GOOD)
    return env.cli("import", "nowhere", str(path), "--role", "pool", "--db", env.url)


@case("import-bad-role")
def _(env):
    path = env.tmp / "ok.jsonl"
    path.write_bytes(GOOD)
    return env.cli("import", "cat", str(path), "--role", "boss", "--db", env.url)


# -------------------------------------------------------------------- API


@case("api-no-token")
def _(env):
    return answer(env.api("GET", "/me", None))


@case("api-bad-token")
def _(env):
    return answer(env.api("GET", "/me", None, headers={"Authorization": "Bearer nope"}))


@case("api-wrong-role")
def _(env):
    return answer(env.api("GET", "/projects/cat/items"))


@case("api-other-project")
def _(env):
    return answer(env.api("GET", "/projects/dog", "ana"))


@case("api-unknown-route")
def _(env):
    return answer(env.api("GET", "/nowhere"))


@case("api-method-not-allowed")
def _(env):
    return answer(env.api("DELETE", "/projects"))


@case("api-schema-mismatch")
def _(env):
    lease = env.lease()
    return answer(
        env.api("POST", f"/leases/{lease}/annotation", json={"labels": "ham"})
    )


@case("api-unreadable-body")
def _(env):
    lease = env.lease()
    return answer(
        env.api(
            "POST",
            f"/leases/{lease}/annotation",
            content=b"\xff\xfe\x00",
            headers={"content-type": "application/json"},
        )
    )


@case("api-body-too-large")
def _(env):
    lease = env.lease()
    big = b'{"label": "bug", "note": "' + b"x" * 2_000_000 + b'"}'
    response = env.api(
        "POST",
        f"/leases/{lease}/annotation",
        content=big,
        headers={"content-type": "application/json"},
    )
    assert (
        env.api(
            "POST", f"/leases/{lease}/annotation", json={"label": "bug"}
        ).status_code
        == 201
    )
    return answer(response)


@case("api-unknown-label")
def _(env):
    lease = env.lease()
    return answer(
        env.api("POST", f"/leases/{lease}/annotation", json={"label": "eggs"})
    )


@case("api-lease-expired")
def _(env):
    lease = env.lease(ago=120, ttl=60)
    return answer(env.api("POST", f"/leases/{lease}/annotation", json={"label": "bug"}))


@case("api-lease-done")
def _(env):
    lease = env.lease()
    assert env.api("POST", f"/leases/{lease}/skip").status_code == 200
    return answer(env.api("POST", f"/leases/{lease}/annotation", json={"label": "bug"}))


@case("api-key-reused")
def _(env):
    first, second = env.lease(), env.lease()
    body = {"label": "bug", "idempotency_key": "same-key-twice"}
    assert env.api("POST", f"/leases/{first}/annotation", json=body).status_code == 201
    return answer(env.api("POST", f"/leases/{second}/annotation", json=body))


@case("api-not-your-lease")
def _(env):
    lease = env.lease("bob")
    return answer(env.api("POST", f"/leases/{lease}/annotation", json={"label": "bug"}))


@case("api-bad-cursor")
def _(env):
    return answer(
        env.api("GET", "/projects/cat/items", "lee", params={"cursor": "page2"})
    )


@case("api-unknown-policy")
def _(env):
    return answer(
        env.api("POST", "/projects/cat/rounds", "lee", json={"policy": "marginn"})
    )


@case("api-queue-empty")
def _(env):
    return answer(env.api("POST", "/projects/empty/next", "lee"))


# --------------------------------------------------------------------- UI


def _csrf(env) -> str:
    match = re.search(
        r'name="csrf-token" content="([^"]+)"', env.client.get("/login").text
    )
    assert match
    return match.group(1)


@case("ui-csrf-missing")
def _(env):
    return answer(env.client.post("/login", data={"username": "ana", "password": "x"}))


@case("ui-login-wrong")
def _(env):
    data = {"username": "cat-nobody", "password": "wrong", "csrf_token": _csrf(env)}
    return answer(env.client.post("/login", data=data))


@case("ui-login-limit")
def _(env):
    data = {"username": "rita", "password": "wrong", "csrf_token": _csrf(env)}
    for _ in range(5):
        assert env.client.post("/login", data=data).status_code == 401
    response = env.client.post("/login", data=data)
    assert int(response.headers["retry-after"]) > 0
    return answer(response)


@case("ui-login-required")
def _(env):
    env.client.cookies.clear()
    return answer(env.client.get("/ui/api/projects/cat/queue"))


@case("ui-upload-too-large")
def _(env):
    password = env.world.passwords["lee"]
    data = {"username": "lee", "password": password, "csrf_token": _csrf(env)}
    assert (
        env.client.post("/login", data=data, follow_redirects=False).status_code == 303
    )
    before = env.rows()
    huge = b'{"id": "h", "text": "big"}\n' * (UPLOAD_LIMIT // 20)
    response = env.client.post(
        "/projects/cat/dashboard/import",
        data={"role": "pool"},
        files={"file": ("huge.jsonl", huge, "application/x-ndjson")},
    )
    env.client.cookies.clear()
    assert env.rows() == before
    return answer(response)


# -------------------------------------------------------------------- CLI


@case("cli-placeholder-secret")
def _(env):
    return env.cli(
        "serve",
        "--db",
        env.url,
        env={"LABELWISE_SECRET_KEY": "change-me", "LABELWISE_DEV": "0"},
    )


@case("cli-bad-setting")
def _(env):
    return env.cli(
        "serve", "--db", env.url, env={"LABELWISE_LEASE_TTL_SECONDS": "soon"}
    )


@case("cli-bad-db-url")
def _(env):
    return env.cli("project", "show", "cat", "--db", "mysql://db/labels")


@case("cli-pool-fs-package")
def _(env):
    registry = pytest.importorskip("fsspec.registry")
    missing = {
        "class": "labelwise_no_such_fs.FileSystem",
        "err": "Install labelwise-no-such-fs to access lwmissing",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry.known_implementations, "lwmissing", missing)
        answer = env.cli(
            "pool", "add", "cat", "lwmissing://bucket/pool-*.parquet", "--db", env.url
        )
    with transaction(env.world.factory) as session:
        assert session.scalar(select(func.count(PoolSource.id))) == 0
    return answer


# ------------------------------------------------------------------ the test


def catalogue() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in CATALOGUE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, expected, excerpt = match.groups()
            assert name not in rows, f"{name} is in docs/errors.md twice"
            rows[name] = (expected.strip(), excerpt.replace("\\|", "|"))
    return rows


def test_the_catalogue_and_the_cases_list_the_same_errors():
    assert sorted(catalogue()) == sorted(CASES)


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(members_store, "_hasher", lambda: cheap)
        yield


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def env(request, tmp_path_factory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("catalogue")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp / "store.db")
        url = f"sqlite:///{tmp / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        truncate_postgres(url)
    settings = make_settings(url).model_copy(update={"max_upload_bytes": UPLOAD_LIMIT})
    app = create_app(settings)
    with TestClient(app) as client:
        world = World(factory=app.state.session_factory)
        world.project("cat", items=40)
        world.project("dog", items=2)
        world.project("empty")
        world.member("ana", "annotator", "cat")
        world.member("bob", "annotator", "cat")
        world.member("rita", "reviewer", "cat")
        world.member("lee", "lead", "cat")
        with transaction(world.factory) as session:
            lee = session.scalar(select(Member).where(Member.name == "lee"))
            empty = session.scalar(select(Project).where(Project.name == "empty"))
            add_to_project(session=session, member=lee, project=empty)
        response = client.post(
            f"{API}/projects/cat/rounds",
            json={"batch_size": 40, "policy": "random", "seed": 0},
            headers=world.headers("lee"),
        )
        assert response.status_code == 201, response.text
        yield Env(client, world, url, tmp)


@pytest.mark.parametrize("name", sorted(CASES))
def test_catalogue_entry(env, name, monkeypatch):
    monkeypatch.delenv("LABELWISE_DATABASE_URL", raising=False)
    monkeypatch.setenv("LABELWISE_SECRET_KEY", "catalogue-secret-not-the-placeholder")
    expected, excerpt = catalogue()[name]
    got, text = CASES[name](env)
    flat = " ".join(text.split())
    assert got == expected, (name, got, flat[:600])
    assert " ".join(excerpt.split()) in flat, (name, flat[:600])
