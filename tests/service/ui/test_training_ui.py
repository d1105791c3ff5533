"""The dashboard's training section: the "Retrain now" button and the job status."""

from __future__ import annotations

import re
import time

from test_review_lead import PROJECT, UI, cheap_password_hashing, csrf, ui

from labelwise.service.store.engine import read_only
from labelwise.service.store.schema import Round, TrainingJob

__all__ = ["cheap_password_hashing", "ui"]  # fixtures shared with test_review_lead


def _status(page: str, job_id: int) -> str:
    match = re.search(rf'data-job="{job_id}" data-status="(\w+)"', page)
    assert match, page
    return match.group(1)


def test_retrain_now_queues_a_job_and_the_dashboard_shows_it_finish(ui: UI) -> None:
    lead = ui.login("lead")
    page = lead.get(f"/projects/{PROJECT}/dashboard")
    assert 'id="training"' in page.text and "No training job yet." in page.text
    assert "Retrain now" in page.text
    response = lead.post(
        f"/projects/{PROJECT}/dashboard/train",
        data={"csrf_token": csrf(page)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with read_only(ui.factory) as session:
        job = session.query(TrainingJob).one()
        assert job.trigger == "click"
    deadline = time.monotonic() + 60
    while True:
        page = lead.get(f"/projects/{PROJECT}/dashboard")
        status = _status(page.text, job.id)
        if status in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == "done", page.text
    assert "none (cold start)" in page.text  # no labels yet: a cold-start round
    with read_only(ui.factory) as session:
        assert session.query(Round).count() == 2


def test_annotators_cannot_retrain(ui: UI) -> None:
    annotator = ui.login("ann1")
    lead_page = ui.login("lead").get(f"/projects/{PROJECT}/dashboard")
    token = csrf(annotator.get("/"))
    response = annotator.post(
        f"/projects/{PROJECT}/dashboard/train",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "Retrain now" in lead_page.text
    with read_only(ui.factory) as session:
        assert session.query(TrainingJob).count() == 0
