"""The score cache (#8): per-(item, model version) scores beside the database."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from labelwise.demo import DEMO_LABELS, load_demo
from labelwise.service.loop import rounds as rounds_module
from labelwise.service.loop import run_round
from labelwise.service.loop.score_cache import (
    ITEM_KEY,
    histogram_png,
    lookup,
    read_scores,
    score_histogram,
    score_path,
    write_scores,
)
from labelwise.service.store.engine import transaction
from labelwise.service.store.pools import add_pool_source
from labelwise.service.store.schema import FinalLabel, Item, Project, Selection


class Counting:
    """A fitted model whose ``predict_proba`` counts the rows it is asked for."""

    def __init__(self, model, counter):
        self._model, self._counter = model, counter

    def predict_proba(self, X):
        self._counter.append(len(X))
        return self._model.predict_proba(X)

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture
def counted(monkeypatch):
    """Rows predicted per round: ``counted[-1]`` is the last round's list."""
    calls: list[list[int]] = []
    real = rounds_module.train_model

    def train(**kwargs):
        calls.append([])
        return Counting(real(**kwargs), calls[-1])

    monkeypatch.setattr(rounds_module, "train_model", train)
    return calls


@pytest.fixture(scope="module")
def train_rows():
    frame = load_demo()
    return frame[frame.split == "train"].iloc[:300]


def _items(project_id, rows, role="pool"):
    return [
        {
            "project_id": project_id,
            "external_id": r.id,
            "role": role,
            "fields": {"text": r.text},
            "content_hash": r.id,
            "source": {},
        }
        for r in rows.itertuples()
    ]


def _label(session, project_id, rows):
    ids = dict(session.execute(select(Item.external_id, Item.id)).all())
    session.execute(
        insert(FinalLabel),
        [
            {
                "item_id": ids[r.id],
                "project_id": project_id,
                "label": json.dumps(r.label),
                "method": "seed",
            }
            for r in rows.itertuples()
        ],
    )


def _project(session):
    project = Project(
        name="tickets", labels=list(DEMO_LABELS), text_field="text", fields=[]
    )
    session.add(project)
    session.flush()
    return project


def _round(factory, **kwargs):
    with transaction(factory) as session:
        project = session.scalar(select(Project))
        summary = run_round(session=session, project=project, **kwargs)
        picks = session.execute(
            select(Selection.item_id, Selection.reason, Selection.rank)
            .where(Selection.round_id == summary.round_id)
            .order_by(Selection.rank)
        ).all()
    return summary, [tuple(p) for p in picks]


def test_same_model_scores_only_new_items_and_keeps_the_batch(
    session_factory, train_rows, counted, tmp_path
):
    with transaction(session_factory) as session:
        project = _project(session)
        session.execute(insert(Item), _items(project.id, train_rows.iloc[:150]))
        _label(session, project.id, train_rows.iloc[:40])
        project_id = project.id
    first, _ = _round(session_factory, batch_size=10, seed=5, data_dir=tmp_path)
    assert sum(counted[-1]) == 110  # every unlabeled pool item
    cached = read_scores(
        score_path(tmp_path, project_id, first.model_version),
        key=ITEM_KEY,
        classes=list(DEMO_LABELS),
        seed=5,
    )
    assert cached is not None and len(cached) == 110

    # New pool items, same labels: the same model version scores only them.
    with transaction(session_factory) as session:
        session.execute(insert(Item), _items(project_id, train_rows.iloc[150:175]))
    second, picks = _round(session_factory, batch_size=10, seed=5, data_dir=tmp_path)
    assert second.model_version == first.model_version
    assert sum(counted[-1]) == 25
    uncached, same = _round(session_factory, batch_size=10, seed=5)
    assert sum(counted[-1]) == 135  # without a data folder everything is scored
    assert [p[1:] for p in picks] == [p[1:] for p in same]
    assert [p[0] for p in picks] == [p[0] for p in same]
    assert uncached.model_version == second.model_version

    # Another seed is another model (another calibration split): all rescored.
    _round(session_factory, batch_size=10, seed=6, data_dir=tmp_path)
    assert sum(counted[-1]) == 135

    # A new label is a new model version: it rescores the whole pool.
    with transaction(session_factory) as session:
        _label(session, project_id, train_rows.iloc[40:41])
    changed, _ = _round(session_factory, batch_size=10, seed=5, data_dir=tmp_path)
    assert changed.model_version != first.model_version
    assert sum(counted[-1]) == 134
    assert score_path(tmp_path, project_id, changed.model_version).exists()

    with transaction(session_factory) as session:
        project = session.get(Project, project_id)
        data = score_histogram(session=session, project=project, data_dir=tmp_path)
    assert data["model_version"] == changed.model_version
    assert data["round_number"] == changed.round_number
    assert data["n_items"] == sum(data["counts"]) == 134
    assert len(data["edges"]) == len(data["counts"]) + 1 == 21
    # A model with 4 classes is never less than 1/4 sure of its top class.
    assert sum(data["counts"][:5]) == 0
    assert histogram_png(data).startswith(b"\x89PNG")


def test_external_pool_is_cached_by_external_id(
    session_factory, train_rows, counted, tmp_path
):
    folder = tmp_path / "pool"
    folder.mkdir()
    for k, start in enumerate(range(0, 240, 120)):
        part = train_rows.iloc[start : start + 120]
        table = pa.table({"ticket": part.id.tolist(), "text": part.text.tolist()})
        pq.write_table(table, folder / f"pool-{k}.parquet", row_group_size=50)
    with transaction(session_factory) as session:
        project = _project(session)
        session.execute(insert(Item), _items(project.id, train_rows.iloc[:40]))
        _label(session, project.id, train_rows.iloc[:40])
        add_pool_source(
            session=session,
            project=project,
            path=str(folder / "pool-*.parquet"),
            id_column="ticket",
        )
        project_id = project.id
    data_dir = tmp_path / "data"
    first, _ = _round(
        session_factory, batch_size=12, seed=3, chunk_size=64, data_dir=data_dir
    )
    assert sum(counted[-1]) == 200  # 240 rows, 40 of them labeled
    again, picks = _round(
        session_factory, batch_size=12, seed=3, chunk_size=64, data_dir=data_dir
    )
    assert again.model_version == first.model_version
    assert sum(counted[-1]) == 0

    part = train_rows.iloc[240:270]  # a new file joins the glob
    table = pa.table({"ticket": part.id.tolist(), "text": part.text.tolist()})
    pq.write_table(table, folder / "pool-2.parquet")
    _, picks = _round(
        session_factory, batch_size=12, seed=3, chunk_size=64, data_dir=data_dir
    )
    assert sum(counted[-1]) == 30
    _, same = _round(session_factory, batch_size=12, seed=3, chunk_size=64)
    assert picks == same
    cached = read_scores(
        score_path(data_dir, project_id, first.model_version),
        key="external_id",
        classes=list(DEMO_LABELS),
        seed=3,
    )
    assert cached is not None and len(cached) == 230
    assert set(cached.keys) == set(train_rows.iloc[40:270].id)


@settings(max_examples=30, deadline=None)
@given(
    old=st.sets(st.integers(0, 60), max_size=30),
    new=st.sets(st.integers(0, 60), max_size=30),
    asked=st.lists(st.integers(0, 60), max_size=40),
)
def test_write_then_lookup_round_trips(tmp_path_factory, old, new, asked):
    path = tmp_path_factory.mktemp("cache") / "model-v.parquet"
    classes = ["a", "b"]

    def probas(keys):
        k = np.asarray(sorted(keys), dtype=np.float64)
        return np.column_stack([k / 100, 1 - k / 100])

    first = write_scores(
        path,
        key=ITEM_KEY,
        keys=sorted(old),
        probas=probas(old) * 0.5,
        classes=classes,
        seed=1,
        version="v",
    )
    write_scores(
        path,
        key=ITEM_KEY,
        keys=sorted(new),
        probas=probas(new),
        classes=classes,
        seed=1,
        version="v",
        previous=first,
    )
    table = read_scores(path, key=ITEM_KEY, classes=classes, seed=1)
    assert table is not None
    assert list(table.keys) == sorted(old | new)
    got, missing = lookup(table, asked, 2)
    for i, key in enumerate(asked):
        assert missing[i] == (key not in old | new)
        if key in new:
            np.testing.assert_allclose(got[i], [key / 100, 1 - key / 100])
        elif key in old:
            np.testing.assert_allclose(got[i], [key / 200, (1 - key / 100) / 2])
        else:
            assert np.isnan(got[i]).all()
    assert read_scores(path, key=ITEM_KEY, classes=classes, seed=2) is None
    assert read_scores(path, key=ITEM_KEY, classes=["a", "c"], seed=1) is None
