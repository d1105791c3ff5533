"""`labelwise worker` and the trainer child of `labelwise serve`, SQLite and PG."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import project_of
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.cli._serve import TrainWorker, _train_mode
from labelwise.service.loop.jobs import request_training
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.schema import TrainingJob

runner = CliRunner()


def _queue_job(factory) -> int:
    with transaction(factory) as session:
        job, _ = request_training(
            session=session, project=project_of(session), trigger="click", batch_size=5
        )
        return job.id


def _job(factory, job_id):
    with read_only(factory) as session:
        job = session.get(TrainingJob, job_id)
        return job.status, job.worker, job.error


def test_worker_once_runs_the_queued_job(seeded, store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    job_id = _queue_job(seeded)
    result = runner.invoke(app, ["worker", "--once", "--db", store_url])
    assert result.exit_code == 0, result.output
    assert "Ran 1 training job." in result.stdout
    status, worker, error = _job(seeded, job_id)
    assert status == "done", error
    assert worker.split(":")[1] == str(os.getpid())  # CliRunner: this process
    again = runner.invoke(app, ["worker", "--once", "--db", store_url])
    assert "Ran 0 training jobs." in again.stdout


def test_train_mode_default_and_errors():
    assert _train_mode(None, default_on=True) == "process"
    assert _train_mode(None, default_on=False) == "off"
    assert _train_mode(TrainWorker.thread, default_on=False) == "thread"
    # A bad choice is refused before anything starts, naming the choices.
    result = runner.invoke(app, ["serve", "--train-worker", "fork", "--port", "1"])
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())
    assert "'fork' is not one of 'process', 'thread', 'off'" in message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as handle:
        return [int(child) for child in handle.read().split()]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for child processes")
def test_serve_trains_in_a_child_process_that_dies_with_it(seeded, store_url, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWISE_")}
    env.update(
        LABELWISE_DEV="1",
        LABELWISE_TRAIN_POLL_SECONDS="0.2",
        LABELWISE_DATA_DIR=str(tmp_path / "data"),
    )
    command = [sys.executable, "-m", "labelwise", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--db", store_url],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            assert server.poll() is None, "labelwise serve exited"
            try:
                url = f"http://127.0.0.1:{port}/api/v1/health"
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(healthy, 60, "the API")
        (trainer,) = _children(server.pid)
        job_id = _queue_job(seeded)
        status, worker, error = _wait_for(
            lambda: (
                _job(seeded, job_id)[0] in ("done", "failed") and _job(seeded, job_id)
            ),
            120,
            "the training job",
        )
        assert status == "done", error
        # Trained by the child, not by the process that serves requests.
        assert worker.split(":")[1] == str(trainer)
        assert os.getpriority(os.PRIO_PROCESS, trainer) >= 10
    finally:
        server.kill()  # no clean shutdown: the child must notice on its own
        server.wait()
    _wait_for(lambda: not os.path.exists(f"/proc/{trainer}"), 30, "the trainer to exit")
