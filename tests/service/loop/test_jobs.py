"""Training jobs on SQLite and PostgreSQL: request, claim once, run, fail, trigger."""

from __future__ import annotations

import threading
from datetime import timedelta

from conftest import add_items, blobs, project_of
from sqlalchemy import func, select

from labelwise.service.loop.jobs import (
    STALE_AFTER,
    check_retrain_triggers,
    claim_job,
    request_training,
    run_job,
    run_next_job,
    training_status,
)
from labelwise.service.loop.worker import TrainingWorker
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.schema import (
    ModelVersion,
    QueueEntry,
    Round,
    TrainingJob,
    utcnow,
)


def _request(factory, **kwargs):
    with transaction(factory) as session:
        job, created = request_training(
            session=session, project=project_of(session), trigger="click", **kwargs
        )
        return job.id, created


def test_one_pending_job_per_project(seeded):
    first, created = _request(seeded, batch_size=10, seed=1)
    again, created_again = _request(seeded)
    assert created and not created_again and again == first
    with read_only(seeded) as session:
        job = session.get(TrainingJob, first)
        assert job.status == "queued" and job.pending_project_id == job.project_id
        assert job.n_final_labels == 30
        assert job.params["batch_size"] == 10
        assert job.params["policy"]["name"] == "default"


def test_a_job_trains_scores_and_swaps_the_queue(seeded, tmp_path):
    job_id, _ = _request(seeded, batch_size=10, seed=1)
    done = run_next_job(seeded, worker="w1", data_dir=tmp_path)
    assert done.id == job_id and done.status == "done", done.error
    with read_only(seeded) as session:
        status = training_status(
            session=session, project=project_of(session), default_every=50
        )
        version = session.scalar(select(ModelVersion))
        first_round = session.scalar(select(Round))
    job = status["jobs"][0]
    assert status["pending"] is None and job["worker"] == "w1"
    assert job["round"]["number"] == 1 and job["model"]["n_labels"] == 30
    assert version.n_labels == 30 and len(version.labels_hash) == 64
    assert version.metrics["n_validation"] == 20
    assert version.calibration_error is not None
    assert (tmp_path / f"project-{first_round.project_id}" / "scores").is_dir()
    # A second job (a new request: the first is no longer pending) swaps the queue.
    second, created = _request(seeded, batch_size=10, seed=2)
    assert created and second != job_id
    assert run_next_job(seeded, worker="w1").status == "done"
    with read_only(seeded) as session:
        by_status = dict(
            session.execute(
                select(QueueEntry.round_id, func.count())
                .where(QueueEntry.status == "open")
                .group_by(QueueEntry.round_id)
            ).all()
        )
        rounds = session.scalars(select(Round.id).order_by(Round.number)).all()
    assert by_status == {rounds[1]: 10}  # the old round's idle entries retired


def test_two_workers_never_claim_the_same_job(seeded):
    job_id, _ = _request(seeded, batch_size=5)
    wins = []
    barrier = threading.Barrier(2)

    def contend(name):
        barrier.wait()
        with transaction(seeded) as session:
            job = claim_job(session=session, worker=name, now=utcnow())
            wins.append(None if job is None else (job.id, name))

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [w for w in wins if w is not None]
    assert len(claimed) == 1 and claimed[0][0] == job_id
    with read_only(seeded) as session:
        assert session.get(TrainingJob, job_id).worker == claimed[0][1]


def test_a_failing_job_records_its_error_and_frees_the_project(seeded):
    with transaction(seeded) as session:
        project = project_of(session)
        job, _ = request_training(session=session, project=project, trigger="api")
        job.params = {**job.params, "seed": -1}  # plan_round refuses it
        job_id = job.id
    with transaction(seeded) as session:
        claim_job(session=session, worker="w", now=utcnow(), job_id=job_id)
    failed = run_job(seeded, job_id)
    assert failed.status == "failed"
    assert "'seed' parameter of run_round" in failed.error
    assert failed.pending_project_id is None and failed.finished_at is not None
    with read_only(seeded) as session:
        assert session.scalar(select(func.count()).select_from(Round)) == 0
    assert _request(seeded)[1]  # the project can queue a new job


def test_a_job_whose_worker_died_is_failed_as_stale(seeded):
    job_id, _ = _request(seeded)
    with transaction(seeded) as session:
        claim_job(session=session, worker="dead", now=utcnow() - 2 * STALE_AFTER)
    with transaction(seeded) as session:
        assert claim_job(session=session, worker="w", now=utcnow()) is None
        job = session.get(TrainingJob, job_id)
        assert job.status == "failed" and "stopped answering" in job.error


def test_the_trigger_counts_new_final_labels_since_the_last_round(seeded):
    with transaction(seeded) as session:
        # Not before the loop has started: no round yet.
        assert check_retrain_triggers(session=session, default_every=5) == []
    _request(seeded, batch_size=5, seed=1)
    run_next_job(seeded)
    with transaction(seeded) as session:
        project = project_of(session)
        assert check_retrain_triggers(session=session, default_every=5) == []
        X, y = blobs(6, seed=9)
        add_items(session, project, "pool", X, y, prefix="new")
    with transaction(seeded) as session:
        project = project_of(session)
        project.settings = {"retrain_every": 0}  # switched off for this project
        session.flush()
        assert check_retrain_triggers(session=session, default_every=5) == []
        project.settings = {"retrain_every": 7}  # 6 new labels: not yet
        session.flush()
        assert check_retrain_triggers(session=session, default_every=5) == []
        project.settings = {}
        session.flush()
        queued = check_retrain_triggers(session=session, default_every=5)
        assert len(queued) == 1
        assert session.get(TrainingJob, queued[0]).trigger == "auto"
        # A pending job blocks a second one.
        assert check_retrain_triggers(session=session, default_every=5) == []


def test_the_worker_thread_runs_queued_jobs(seeded):
    worker = TrainingWorker(seeded, retrain_every=50, poll_seconds=0.05)
    job_id, _ = _request(seeded, batch_size=5)
    worker.start()
    try:
        worker.wake()
        deadline = utcnow() + timedelta(seconds=60)
        while utcnow() < deadline:
            with read_only(seeded) as session:
                if session.get(TrainingJob, job_id).status in ("done", "failed"):
                    break
            threading.Event().wait(0.05)
    finally:
        worker.stop()
    with read_only(seeded) as session:
        assert session.get(TrainingJob, job_id).status == "done"


def test_the_worker_retrains_once_the_trigger_fires(seeded):
    worker = TrainingWorker(seeded, retrain_every=5)
    assert worker.run_once() == 0  # no round yet: the loop has not started
    _request(seeded, batch_size=5, seed=1)
    assert worker.run_once() == 1
    assert worker.run_once() == 0  # idle: nothing new
    with transaction(seeded) as session:
        X, y = blobs(5, seed=4)
        add_items(session, project_of(session), "pool", X, y, prefix="more")
    assert worker.run_once() == 1
    with read_only(seeded) as session:
        jobs = session.scalars(select(TrainingJob).order_by(TrainingJob.id)).all()
    assert [(job.trigger, job.status) for job in jobs] == [
        ("click", "done"),
        ("auto", "done"),
    ]
