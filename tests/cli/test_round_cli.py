"""``labelwise round`` through CliRunner, on SQLite and on the local PostgreSQL."""

import json
import os
import uuid

import pytest
from sqlalchemy import create_engine, insert, text
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.demo import DEMO_LABELS, load_demo
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.schema import Base, FinalLabel, Item, Project

runner = CliRunner()
PG_SERVER = os.environ.get("LABELWISE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
KEYS = [
    "round_id",
    "round_number",
    "model_version",
    "policy_version",
    "policy",
    "mode",
    "selected",
    "counts_by_reason",
    "metrics",
]


@pytest.fixture(scope="module")
def pg_url():
    """A fresh, migrated PostgreSQL database for this module, dropped at the end."""
    name = f"labelwise_cli_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = PG_SERVER.replace("postgresql://", "postgresql+psycopg://")
    admin = create_engine(f"{admin_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path, monkeypatch):
    """A migrated, empty database URL: a SQLite file, or the truncated PostgreSQL."""
    monkeypatch.delenv("LABELWISE_DATABASE_URL", raising=False)
    # The score cache of a PostgreSQL round defaults to ./labelwise-data.
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        engine = make_engine(url)
        upgrade(engine)
    else:
        url = request.getfixturevalue("pg_url")
        engine = make_engine(url)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def seed(url, *, name="tickets", n_pool=40, n_labeled=0, n_validation=0):
    """A demo-data project: pool items (the first n_labeled labeled), validation."""
    frame = load_demo()
    pool = frame[frame.split == "train"].iloc[:n_pool]
    validation = frame[frame.split == "test"].iloc[:n_validation]
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        project = Project(
            name=name, labels=list(DEMO_LABELS), text_field="text", fields=[]
        )
        session.add(project)
        session.flush()
        labeled = []
        for rows, role, n in (
            (pool, "pool", n_labeled),
            (validation, "validation", -1),
        ):
            for i, row in enumerate(rows.itertuples()):
                item = Item(
                    project_id=project.id,
                    external_id=row.id,
                    role=role,
                    fields={"text": row.text},
                    content_hash=row.id,
                )
                session.add(item)
                if n < 0 or i < n:
                    labeled.append((item, row.label))
        session.flush()
        if labeled:
            session.execute(
                insert(FinalLabel),
                [
                    {
                        "item_id": item.id,
                        "project_id": project.id,
                        "label": json.dumps(label),
                        "method": "seed",
                    }
                    for item, label in labeled
                ],
            )
    engine.dispose()


def invoke(*args):
    return runner.invoke(app, ["round", *args])


def test_cold_start_prints_a_readable_summary(db):
    seed(db)
    result = invoke("tickets", "--batch-size", "10", "--seed", "1", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Round 1 of project 'tickets': 10 items selected." in result.stdout
    assert "cold start" in result.stdout
    # No model yet: CLUE clusters the pool unweighted (typical items, reason
    # diverse) and takes the slots representative hands on.
    assert "reasons  random 1, diverse 9\n" in result.stdout


def test_cold_start_with_a_geometry_policy_picks_diverse_items(db):
    seed(db)
    result = invoke(
        "tickets",
        "--batch-size",
        "10",
        "--seed",
        "1",
        "--policy",
        "balanced",
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    assert "cold start" in result.stdout
    # 15 % random rounds to 2; margin and error_driven hand on to k-center.
    assert "reasons  random 2, diverse 8\n" in result.stdout


def test_json_prints_exactly_the_summary_object(db):
    seed(db, n_labeled=20, n_validation=10)
    result = invoke("tickets", "--batch-size", "8", "--seed", "5", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == KEYS
    assert data["round_number"] == 1
    assert data["mode"] == "model"
    assert len(data["model_version"]) == 12
    assert data["policy"] == "default"
    assert data["selected"] == 8 == sum(data["counts_by_reason"].values())
    assert set(data["metrics"]) == {"accuracy", "macro_f1", "n_validation"}
    again = json.loads(
        invoke(
            "tickets", "--batch-size", "8", "--seed", "5", "--json", "--db", db
        ).stdout
    )
    assert again["round_number"] == 2
    assert again["model_version"] == data["model_version"]


def test_readable_summary_of_a_trained_round(db):
    seed(db, n_labeled=15, n_validation=10)
    result = invoke("tickets", "--policy", "margin", "--seed", "0", "--db", db)
    assert result.exit_code == 0, result.output
    assert "25 items selected" in result.stdout  # 25 unlabeled left, asks for 50
    assert "on 10 validation items" in result.stdout
    assert "policy   margin" in result.stdout
    assert "uncertain 25" in result.stdout


def test_unknown_project_exits_4_with_the_project_names(db):
    seed(db, name="tickets")
    seed(db, name="alerts", n_pool=5)
    result = invoke("tickest", "--db", db)
    assert result.exit_code == 4
    assert "No project named 'tickest'" in result.stderr
    assert "alerts, tickets" in result.stderr


def test_empty_pool_exits_non_zero_with_an_import_hint(db):
    seed(db, name="done", n_pool=5, n_labeled=5)
    result = invoke("done", "--db", db)
    assert result.exit_code == 1
    assert "Pool exhausted" in result.stderr
    assert "labelwise import done FILE --role pool" in result.stderr


def test_bad_options_exit_2_with_the_expected_values(db):
    seed(db)
    result = invoke("tickets", "--batch-size", "0", "--db", db)
    assert result.exit_code == 2
    assert "'batch_size' parameter of run_round must be an int" in result.stderr
    result = invoke("tickets", "--policy", "nope", "--db", db)
    assert result.exit_code == 2
    assert "'nope' is neither a policy name nor an existing file" in result.stderr
