"""POST /train answers 202 at once; the job's status and error show in GET."""

from __future__ import annotations

import time

from apitools import API, assert_canonical_error

from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.schema import TrainingJob


def _setup(world):
    world.project("alpha", items=12)
    world.member("lead", "lead", "alpha")
    return world.headers("lead")


def _wait(client, headers, job_id):
    deadline = time.monotonic() + 60
    while True:
        job = client.get(
            f"{API}/projects/alpha/train/jobs/{job_id}", headers=headers
        ).json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_train_is_accepted_at_once_and_ends_done(client, world):
    lead = _setup(world)
    response = client.post(
        f"{API}/projects/alpha/train", json={"batch_size": 4, "seed": 1}, headers=lead
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["status"], job["created"], job["trigger"]) == ("queued", True, "api")
    assert job["requested_by"] == "lead" and job["batch_size"] == 4
    done = _wait(client, lead, job["job_id"])
    assert done["status"] == "done", done
    assert done["round"]["number"] == 1 and done["model"] is None  # cold start
    assert done["started_at"] <= done["finished_at"]
    assert client.get(f"{API}/projects/alpha/model-versions", headers=lead).json() == []


def test_a_second_request_gets_the_pending_job(app, client, world):
    lead = _setup(world)
    worker = app.state.training_worker
    worker.stop()  # keep the first job queued
    first = client.post(f"{API}/projects/alpha/train", headers=lead).json()
    second = client.post(f"{API}/projects/alpha/train", headers=lead)
    assert second.status_code == 202
    assert second.json()["job_id"] == first["job_id"]
    assert second.json()["created"] is False
    listed = client.get(f"{API}/projects/alpha/train/jobs", headers=lead).json()
    assert [job["status"] for job in listed] == ["queued"]


def test_a_failed_job_shows_its_error(app, client, world):
    lead = _setup(world)
    app.state.training_worker.stop()
    job_id = client.post(f"{API}/projects/alpha/train", headers=lead).json()["job_id"]
    with transaction(app.state.session_factory) as session:
        job = session.get(TrainingJob, job_id)
        job.params = {**job.params, "seed": -1}
    from labelwise.service.loop.jobs import run_next_job

    run_next_job(app.state.session_factory, worker="test")
    job = _wait(client, lead, job_id)
    assert job["status"] == "failed"
    assert "'seed' parameter of run_round" in job["error"]


def test_bad_training_requests_queue_nothing(app, client, world):
    lead = _setup(world)
    unknown = client.post(
        f"{API}/projects/alpha/train", json={"policy": "no-such"}, headers=lead
    )
    error = assert_canonical_error(unknown, 400)
    assert "no-such" in error["message"]
    assert_canonical_error(
        client.post(
            f"{API}/projects/alpha/train", json={"batch_size": 0}, headers=lead
        ),
        422,
    )
    missing = client.get(f"{API}/projects/alpha/train/jobs/999", headers=lead)
    assert_canonical_error(missing, 404)
    with read_only(app.state.session_factory) as session:
        assert session.query(TrainingJob).count() == 0


def test_release_routes_freeze_diff_and_roll_back(client, world):
    from apitools import claim, submit

    lead = _setup(world)
    world.member("ann", "annotator", "alpha")
    client.post(
        f"{API}/projects/alpha/rounds",
        json={"batch_size": 12, "policy": "random", "seed": 0},
        headers=world.headers("lead"),
    )
    factory = world.factory
    submit(factory, "ann", claim(factory, "ann", "alpha"), "bug")
    first = client.post(f"{API}/projects/alpha/releases", json={}, headers=lead)
    assert first.status_code == 201 and first.json()["release_id"] == "r1"
    submit(factory, "ann", claim(factory, "ann", "alpha"), "ask")
    assert (
        client.post(f"{API}/projects/alpha/releases", headers=lead).status_code == 201
    )
    diff = client.get(f"{API}/projects/alpha/releases/r1/diff/r2", headers=lead).json()
    assert diff["counts"]["added"] == 1 and diff["added"][0]["label"] == "ask"
    listed = client.get(f"{API}/projects/alpha/releases", headers=lead).json()
    assert [row["release_id"] for row in listed] == ["r1", "r2"]
    back = client.post(f"{API}/projects/alpha/releases/r1/rollback", headers=lead)
    assert back.status_code == 200 and back.json()["removed"] == 1
    assert (
        client.get(f"{API}/projects/alpha/releases/r3", headers=lead).status_code == 404
    )
    for method in ("PUT", "PATCH", "DELETE"):
        response = client.request(
            method, f"{API}/projects/alpha/releases/r1", headers=lead
        )
        assert response.status_code == 405  # no update path
