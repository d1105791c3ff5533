"""External Parquet pools: pool add/list/remove and rounds that stream the files."""

import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.demo import DEMO_LABELS, load_demo
from labelwise.exceptions import ConflictError, InvalidInputError, NotFoundError
from labelwise.service.loop import run_round
from labelwise.service.store.engine import transaction
from labelwise.service.store.pools import add_pool_source, remove_pool_source
from labelwise.service.store.schema import (
    FinalLabel,
    Item,
    PoolSource,
    Project,
    Selection,
)

runner = CliRunner()


@pytest.fixture
def setup(session_factory, tmp_path):
    frame = load_demo()
    train = frame[frame.split == "train"].iloc[:400]
    for k, start in enumerate(range(0, 400, 150)):
        part = train.iloc[start : start + 150]
        table = pa.table({"ticket": part.id.tolist(), "text": part.text.tolist()})
        pq.write_table(table, tmp_path / f"pool-{k}.parquet", row_group_size=50)
    labeled = train.iloc[:40]  # also rows of the files: rounds must skip them
    with transaction(session_factory) as session:
        project = Project(
            name="tickets", labels=list(DEMO_LABELS), text_field="text", fields=[]
        )
        session.add(project)
        session.flush()
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
                for r in labeled.itertuples()
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
                for r in labeled.itertuples()
            ],
        )
    return tmp_path, set(labeled.id)


def round_(factory, **kwargs):
    with transaction(factory) as session:
        project = session.scalar(select(Project).where(Project.name == "tickets"))
        return run_round(session=session, project=project, **kwargs)


def test_round_streams_the_files_and_materialises_only_picks(
    session_factory, setup, store_url
):
    folder, labeled = setup
    result = runner.invoke(
        app,
        [
            "pool",
            "add",
            "tickets",
            str(folder / "pool-*.parquet"),
            "--id-column",
            "ticket",
            "--json",
            "--db",
            store_url,
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["n_files"] == 3 and info["n_rows"] == 400
    assert info["text_column"] == "text"

    summary = round_(session_factory, batch_size=20, seed=3, chunk_size=64)
    assert summary.mode == "model" and summary.selected == 20
    with transaction(session_factory) as session:
        n_items = session.scalar(select(func.count()).select_from(Item))
        picked = session.execute(
            select(Item.external_id, Item.fields, Item.source).join(
                Selection, Selection.item_id == Item.id
            )
        ).all()
    assert n_items == 40 + 20  # the labeled items plus the picks, nothing else
    assert len(picked) == 20
    assert not {p.external_id for p in picked} & labeled
    assert all(p.fields["text"] for p in picked)
    assert all(p.source["format"] == "parquet" for p in picked)

    # The chunk size never changes the batch: a second round with the same
    # seed on the same labels picks the same items (now reused, not re-added).
    again = round_(session_factory, batch_size=20, seed=3, chunk_size=400)
    with transaction(session_factory) as session:
        rounds = session.execute(
            select(Selection.round_id, Selection.item_id).order_by(Selection.rank)
        ).all()
        assert session.scalar(select(func.count()).select_from(Item)) == 60
    first = [r.item_id for r in rounds if r.round_id == summary.round_id]
    second = [r.item_id for r in rounds if r.round_id == again.round_id]
    assert first == second


def test_pool_commands_and_errors(session_factory, setup, store_url):
    folder, _ = setup
    listed = runner.invoke(
        app, ["pool", "list", "tickets", "--json", "--db", store_url]
    )
    assert listed.exit_code == 0 and json.loads(listed.output) == []
    with transaction(session_factory) as session:
        project = session.scalar(select(Project))
        with pytest.raises(InvalidInputError, match="lacks column"):
            add_pool_source(
                session=session, project=project, path=str(folder), id_column="nope"
            )
        with pytest.raises(InvalidInputError, match="No Parquet file"):
            add_pool_source(
                session=session, project=project, path=str(folder / "x*.parquet")
            )
        assert session.scalar(select(func.count()).select_from(PoolSource)) == 0
        add_pool_source(
            session=session, project=project, path=str(folder), id_column="ticket"
        )
        with pytest.raises(ConflictError, match="already reads"):
            add_pool_source(
                session=session, project=project, path=str(folder), id_column="ticket"
            )
    listed = runner.invoke(app, ["pool", "list", "tickets", "--db", store_url])
    assert "400 rows" in listed.output
    removed = runner.invoke(app, ["pool", "remove", "tickets", "--db", store_url])
    assert removed.exit_code == 0, removed.output
    with transaction(session_factory) as session:
        with pytest.raises(NotFoundError, match="no external pool"):
            remove_pool_source(session=session, project=session.scalar(select(Project)))


def _pool_add(store_url, path):
    args = ["pool", "add", "tickets", path, "--id-column", "ticket", "--json"]
    return runner.invoke(app, [*args, "--db", store_url])


def _picked(factory, round_id):
    with transaction(factory) as session:
        return session.execute(
            select(Item.external_id, Item.source)
            .join(Selection, Selection.item_id == Item.id)
            .where(Selection.round_id == round_id)
            .order_by(Selection.rank)
        ).all()


def test_file_url_glob_end_to_end(session_factory, setup, store_url):
    folder, labeled = setup
    url = f"file://{folder}/pool-*.parquet"
    added = _pool_add(store_url, url)
    assert added.exit_code == 0, added.output
    info = json.loads(added.output)
    assert info["path"] == url and info["n_files"] == 3 and info["n_rows"] == 400
    by_url = round_(session_factory, batch_size=20, seed=5, chunk_size=64)
    assert by_url.selected == 20
    picked = _picked(session_factory, by_url.round_id)
    assert not {p.external_id for p in picked} & labeled
    assert {p.source["pool"] for p in picked} == {url}

    # The same files by plain glob: the same seed picks the same items.
    assert (
        runner.invoke(app, ["pool", "remove", "tickets", "--db", store_url]).exit_code
        == 0
    )
    assert _pool_add(store_url, str(folder / "pool-*.parquet")).exit_code == 0
    by_path = round_(session_factory, batch_size=20, seed=5, chunk_size=64)
    assert [p.external_id for p in _picked(session_factory, by_path.round_id)] == [
        p.external_id for p in picked
    ]


def test_memory_url_end_to_end(session_factory, setup, store_url):
    fsspec = pytest.importorskip("fsspec")
    folder, labeled = setup
    root = f"memory://labelwise-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    for path in sorted(folder.glob("pool-*.parquet")):
        fs.pipe(f"{root}/{path.name}", path.read_bytes())
    try:
        added = _pool_add(store_url, root)  # a folder URL: its *.parquet files
        assert added.exit_code == 0, added.output
        assert json.loads(added.output)["n_rows"] == 400
        summary = round_(session_factory, batch_size=15, seed=2, chunk_size=100)
        assert summary.mode == "model" and summary.selected == 15
        picked = _picked(session_factory, summary.round_id)
        assert len(picked) == 15 and not {p.external_id for p in picked} & labeled
        assert {p.source["pool"] for p in picked} == {root}
    finally:
        fs.rm(root, recursive=True)


def test_pool_add_names_the_missing_filesystem_package(
    session_factory, setup, store_url, monkeypatch
):
    registry = pytest.importorskip("fsspec.registry")
    monkeypatch.setitem(
        registry.known_implementations,
        "lwmissing",
        {
            "class": "labelwise_no_such_fs.FileSystem",
            "err": "Install labelwise-no-such-fs to access lwmissing",
        },
    )
    result = _pool_add(store_url, "lwmissing://bucket/pool-*.parquet")
    assert result.exit_code != 0
    assert "labelwise-no-such-fs" in result.output
    with transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(PoolSource)) == 0
