"""Production failures: imported with what the model said, used by error_driven."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import LABELS, add_items, project_of
from sqlalchemy import select

from labelwise.exceptions import ImportRejected
from labelwise.policy import get_policy
from labelwise.service.io import import_file
from labelwise.service.loop import failure_summary, run_round
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import Item, Selection


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_failures_import_with_the_models_answer(session_factory, tmp_path):
    path = _jsonl(
        tmp_path / "failures.jsonl",
        [
            {"id": "f1", "x": 1.0, "y": 1.0, "model_label": "a", "label": "b"},
            {"id": "f2", "x": 2.0, "y": 2.0, "model_label": "a"},
            {"id": "f3", "x": 3.0, "y": 3.0, "label": "b"},
        ],
    )
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="t", labels=LABELS, fields=["x", "y"]
        )
        report = import_file(
            session=session, project=project, path=path, role="failure"
        )
        assert (report.items, report.labels) == (3, 2)
        said = dict(session.execute(select(Item.external_id, Item.source)).all())
        summary = failure_summary(session=session, project=project)
    assert said["f1"]["model_label"] == '"a"' and "model_label" not in said["f3"]
    assert summary["failures"] == 3
    assert summary["with_right_label"] == 2
    assert summary["with_model_label"] == 2
    assert summary["model_right_on"] == 0
    assert summary["confusions"] == [
        {"model_label": "a", "right_label": "b", "count": 1}
    ]
    assert summary["error_driven_picks"] == 0


def test_a_model_label_outside_the_label_set_refuses_the_import(
    session_factory, tmp_path
):
    path = _jsonl(
        tmp_path / "bad.jsonl",
        [
            {"id": "f1", "x": 1.0, "y": 1.0, "model_label": "a"},
            {"id": "f2", "x": 2.0, "y": 2.0, "model_label": "zebra"},
        ],
    )
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="t", labels=LABELS, fields=["x", "y"]
        )
        with pytest.raises(ImportRejected) as caught:
            import_file(session=session, project=project, path=path, role="failure")
        assert session.scalar(select(Item.id)) is None  # nothing written
    [error] = caught.value.errors
    assert (error.line, error.field) == (2, "model_label")
    assert "'zebra' is not a label of project 't'" in error.message


def _error_driven_picks(factory) -> np.ndarray:
    """The points an error-driven round picks from a pool with a far corner."""
    rng = np.random.default_rng(0)
    with transaction(factory) as session:
        project = create_project(
            session=session, name="t", labels=LABELS, fields=["x", "y"]
        )
        pool = np.vstack(
            [rng.normal(0, 3, size=(180, 2)), rng.normal(12, 0.5, size=(20, 2))]
        )
        add_items(session, project, "pool", pool, ["a"] * 200, prefix="p", labeled=0)
        failures = rng.normal(12, 0.5, size=(5, 2))
        add_items(session, project, "failure", failures, ["b"] * 5, prefix="f")
        run_round(
            session=session,
            project=project,
            batch_size=10,
            policy=get_policy("error_driven"),
            seed=1,
        )
    with read_only(factory) as session:
        rows = session.execute(
            select(Item.fields, Selection.reason).join(
                Selection, Selection.item_id == Item.id
            )
        ).all()
        summary = failure_summary(session=session, project=project_of(session))
    assert {reason for _, reason in rows} == {"failure"}
    assert summary["error_driven_picks"] == 10
    assert summary["error_driven_by_round"] == [{"round": 1, "picks": 10}]
    return np.array([[f["x"], f["y"]] for f, _ in rows])


def test_error_driven_picks_move_toward_the_failures(session_factory):
    near = _error_driven_picks(session_factory)
    distance = np.linalg.norm(near - 12.0, axis=1)
    # Every pick comes from the corner where the failures are (20 of 200 items).
    assert (distance < 3).all(), distance
