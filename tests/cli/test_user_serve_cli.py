"""``labelwise user`` through CliRunner; ``labelwise serve`` as a real subprocess."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.service.store.engine import make_engine, make_sessionmaker, read_only
from labelwise.service.store.members import NotAuthenticated, authenticate_token

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    for name in ("LABELWISE_DATABASE_URL", "LABELWISE_DEV", "LABELWISE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return f"sqlite:///{tmp_path / 'users.db'}"


def authenticate(db, token):
    engine = make_engine(db)
    try:
        with read_only(make_sessionmaker(engine)) as session:
            return authenticate_token(session=session, token=token).name
    finally:
        engine.dispose()


def test_user_add_json_prints_exactly_the_four_keys(db):
    result = runner.invoke(
        app, ["user", "add", "ana", "--role", "annotator", "--json", "--db", db]
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert list(created) == ["name", "role", "password", "token"]
    assert created["name"] == "ana" and created["role"] == "annotator"
    assert authenticate(db, created["token"]) == "ana"
    listed = runner.invoke(app, ["user", "list", "--json", "--db", db])
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [row["name"] for row in rows] == ["ana"]
    assert set(rows[0]) == {"name", "role", "active", "created_at"}
    assert created["token"] not in listed.stdout
    assert created["password"] not in listed.stdout


def test_user_add_text_and_project(db):
    runner.invoke(app, ["project", "create", "tickets", "--labels", "a,b", "--db", db])
    result = runner.invoke(
        app,
        ["user", "add", "lea", "--role", "lead", "--project", "tickets", "--db", db],
    )
    assert result.exit_code == 0, result.output
    assert "Added lead 'lea' in project 'tickets'." in result.stdout
    assert "password: " in result.stdout and "token: " in result.stdout
    assert "Shown once" in result.stderr


def test_user_add_errors_name_the_fix(db):
    result = runner.invoke(app, ["user", "add", "ana", "--role", "boss", "--db", db])
    assert result.exit_code == 2
    assert "admin, lead, reviewer, annotator" in result.stderr
    assert "'boss'" in result.stderr
    runner.invoke(app, ["user", "add", "ana", "--role", "lead", "--db", db])
    result = runner.invoke(app, ["user", "add", "ana", "--role", "lead", "--db", db])
    assert result.exit_code == 5
    assert "already exists" in result.stderr
    result = runner.invoke(
        app, ["user", "add", "bo", "--role", "lead", "--project", "nope", "--db", db]
    )
    assert result.exit_code == 4
    assert "No project named 'nope'" in result.stderr


def test_user_token_rotates(db):
    created = json.loads(
        runner.invoke(
            app, ["user", "add", "ana", "--role", "lead", "--json", "--db", db]
        ).stdout
    )
    result = runner.invoke(app, ["user", "token", "ana", "--db", db])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip()
    assert new and new != created["token"]
    assert authenticate(db, new) == "ana"
    with pytest.raises(NotAuthenticated):
        authenticate(db, created["token"])
    missing = runner.invoke(app, ["user", "token", "bo", "--db", db])
    assert missing.exit_code == 4 and "No member named 'bo'" in missing.stderr


def test_user_list_empty(db):
    result = runner.invoke(app, ["user", "list", "--db", db])
    assert result.exit_code == 0
    assert "No members yet" in result.stderr


def test_serve_refuses_the_placeholder_secret(db):
    result = runner.invoke(app, ["serve", "--db", db, "--port", "1"])
    assert result.exit_code == 2
    assert "LABELWISE_SECRET_KEY" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr
    assert "LABELWISE_DEV=1" in result.stderr


@pytest.mark.parametrize(
    ("flags", "workers", "access_log"),
    [([], 1, True), (["--no-access-log"], 1, False), (["--workers", "2"], 2, True)],
)
def test_serve_passes_the_access_log_choice_to_uvicorn(
    db, monkeypatch, flags, workers, access_log
):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("LABELWISE_SECRET_KEY", "a-real-secret-for-this-test-only")
    # --workers > 1 exports the URL and the trainer choice for the worker
    # processes: undone after.
    monkeypatch.setenv("LABELWISE_DATABASE_URL", db)
    monkeypatch.setenv("LABELWISE_TRAIN_WORKER", "1")
    command = ["serve", "--db", db, "--port", "1", "--train-worker", "off"]
    result = runner.invoke(app, [*command, *flags])
    assert result.exit_code == 0, result.output
    assert calls and calls[0]["access_log"] is access_log
    assert calls[0].get("workers", 1) == workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_init_admin_subprocess(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LABELWISE_")
    }
    env["LABELWISE_SECRET_KEY"] = "a-real-secret-for-this-test-only"
    command = [
        sys.executable,
        "-c",
        "from labelwise.cli import main; main()",
        "serve",
        "--init-admin",
        "--port",
        str(port),
        "--db",
        f"sqlite:///{tmp_path / 'served.db'}",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True
    )
    reader.start()
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "".join(lines)
            try:
                health = httpx.get(f"{base}/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert health.json() == {
            "status": "ok",
            "version": health.json()["version"],
            "database": "sqlite",
        }
        token = next(
            line.split("token:", 1)[1].strip() for line in lines if "token:" in line
        )
        password = next(
            line.split("password:", 1)[1].strip()
            for line in lines
            if "password:" in line
        )
        me = httpx.get(
            f"{base}/me", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "admin" and me.json()["role"] == "admin"
        denied = httpx.get(f"{base}/me", timeout=5)
        assert denied.status_code == 401
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        process.stdout.close()
    output = "".join(lines)
    # Printed once, by --init-admin; no log line repeats them.
    assert output.count(token) == 1 and output.count(password) == 1
    assert "GET /api/v1/me" in output  # uvicorn's access log did run
