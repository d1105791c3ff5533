"""The dashboard's score histogram: a lead-only PNG from the score cache (#8)."""

import json
import re

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from labelwise.demo import DEMO_LABELS, load_demo
from labelwise.service.api import create_app
from labelwise.service.loop import run_round
from labelwise.service.loop.score_cache import score_path
from labelwise.service.settings import Settings
from labelwise.service.store import members as members_store
from labelwise.service.store.engine import transaction
from labelwise.service.store.members import create_member
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import FinalLabel, Item

SECRET = "test-secret-key-not-the-placeholder"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def login(app, name: str, password: str) -> TestClient:
    client = TestClient(app)
    token = CSRF.search(client.get("/login").text).group(1)
    response = client.post(
        "/login",
        data={"csrf_token": token, "username": name, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def test_lead_sees_the_histogram_of_the_latest_round(store_url, tmp_path, monkeypatch):
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(members_store, "_hasher", lambda: cheap)
    # SQLite: the data folder defaults to labelwise-data beside the database
    # file; PostgreSQL: a configured folder.
    pg = store_url.startswith("postgresql")
    settings = Settings(
        database_url=store_url,
        secret_key=SECRET,
        data_dir=tmp_path / "pgdata" if pg else None,
    )
    data_dir = settings.resolved_data_dir()
    if not pg:
        assert data_dir == tmp_path / "labelwise-data"
    rows = load_demo().iloc[:80]
    app = create_app(settings)
    with TestClient(app):
        factory = app.state.session_factory
        with transaction(factory) as session:
            project = create_project(
                session=session,
                name="tickets",
                labels=list(DEMO_LABELS),
                text_field="text",
            )
            session.execute(
                insert(Item),
                [
                    {
                        "project_id": project.id,
                        "external_id": r.id,
                        "role": "pool",
                        "fields": {"text": r.text},
                        "content_hash": r.id,
                        "source": {},
                    }
                    for r in rows.itertuples()
                ],
            )
            ids = dict(session.execute(select(Item.external_id, Item.id)).all())
            session.execute(
                insert(FinalLabel),
                [
                    {
                        "item_id": ids[r.id],
                        "project_id": project.id,
                        "label": json.dumps(r.label),
                        "method": "seed",
                    }
                    for r in rows.iloc[:30].itertuples()
                ],
            )
            summary = run_round(
                session=session,
                project=project,
                batch_size=5,
                seed=1,
                data_dir=data_dir,
            )
            passwords = {
                name: create_member(
                    session=session, name=name, role=role, project="tickets"
                )[1]
                for name, role in (("lead", "lead"), ("ann", "annotator"))
            }
            project_id = project.id
        assert score_path(data_dir, project_id, summary.model_version).exists()

        lead = login(app, "lead", passwords["lead"])
        page = lead.get("/projects/tickets/dashboard")
        assert page.status_code == 200
        assert 'id="score-histogram"' in page.text
        assert 'src="/projects/tickets/dashboard/scores.png"' in page.text
        png = lead.get("/projects/tickets/dashboard/scores.png")
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")

        annotator = login(app, "ann", passwords["ann"])
        assert (
            annotator.get("/projects/tickets/dashboard/scores.png").status_code == 403
        )
        anonymous = TestClient(app)
        refused = anonymous.get(
            "/projects/tickets/dashboard/scores.png", follow_redirects=False
        )
        assert refused.status_code in (302, 303, 307)
        for client in (lead, annotator, anonymous):
            client.close()
