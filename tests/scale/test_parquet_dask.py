"""Parquet pools read in chunks, locally and as Dask tasks, equal in-memory batches."""

import sys
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from labelwise.exceptions import ConfigError, InvalidInputError, PoolExhausted
from labelwise.policy import build_batch, get_policy
from labelwise.scale import ChunkScorer, ParquetPool, expand_paths, select_parquet
from labelwise.strategies import ScoringContext

COLUMNS = ("a", "b", "c")
N = 2400


@pytest.fixture(scope="module")
def pool_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3)).astype(np.float32)
    X[: N // 2] += 1.5
    ids = np.arange(N) * 3 + 1
    for k, start in enumerate(range(0, N, 1000)):  # files of 1000, 1000, 400 rows
        stop = min(start + 1000, N)
        table = pa.table(
            {
                "id": ids[start:stop],
                **{c: X[start:stop, i] for i, c in enumerate(COLUMNS)},
            }
        )
        pq.write_table(table, folder / f"part-{k}.parquet", row_group_size=300)
    X_lab = rng.normal(size=(60, 3))
    X_lab[:30] += 1.5
    y_lab = np.array(["x"] * 30 + ["y"] * 30)
    model = LogisticRegression().fit(X_lab, y_lab)
    return folder, X, ids, model, X_lab, model.predict(X_lab) == y_lab


def in_memory(setup, *, seed, sample, keep=None):
    _folder, X, ids, model, X_lab, correct = setup
    rows = np.arange(N) if keep is None else keep
    context = ScoringContext(
        probas=model.predict_proba(X[rows]),
        X=X[rows],
        X_labeled=X_lab,
        labeled_correct=correct,
    )
    return build_batch(
        get_policy("default"),
        context,
        batch_size=40,
        ids=ids[rows],
        rng=seed,
        sample_size=sample,
    ), rows


def parquet_batch(setup, *, seed, sample, chunk, scheduler=None, exclude=None):
    folder, _X, _ids, model, X_lab, correct = setup
    pool = ParquetPool.open(
        str(folder / "*.parquet"), id_column="id", feature_columns=COLUMNS
    )
    scorer = ChunkScorer(
        id_column="id", feature_columns=COLUMNS, model=model, exclude_ids=exclude
    )
    return select_parquet(
        get_policy("default"),
        pool,
        scorer,
        batch_size=40,
        rng=seed,
        chunk_size=chunk,
        sample_size=sample,
        scheduler=scheduler,
        X_labeled=X_lab,
        labeled_correct=correct,
    )


def assert_same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.reasons == b.reasons and a.strategies == b.strategies
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize(("chunk", "sample"), [(128, 200), (1000, 200), (5000, 3000)])
def test_local_parquet_equals_in_memory(pool_files, chunk, sample):
    expected, rows = in_memory(pool_files, seed=4, sample=sample)
    got = parquet_batch(pool_files, seed=4, sample=sample, chunk=chunk)
    assert_same(got, expected)
    np.testing.assert_array_equal(got.positions, rows[expected.positions])


def test_labeled_ids_are_left_out(pool_files):
    from labelwise.scale import PoolChunk, select_chunked

    _, X, ids, model, X_lab, correct = pool_files
    labeled = ids[::5]
    keep = np.flatnonzero(~np.isin(ids, labeled))
    # Rows keep their file positions: the in-memory equivalent is one chunk
    # whose index skips the labeled rows.
    expected = select_chunked(
        get_policy("default"),
        [
            PoolChunk(
                index=keep,
                ids=ids[keep],
                probas=model.predict_proba(X[keep]),
                X=X[keep],
            )
        ],
        batch_size=40,
        rng=2,
        sample_size=150,
        X_labeled=X_lab,
        labeled_correct=correct,
    )
    got = parquet_batch(
        pool_files, seed=2, sample=150, chunk=256, exclude=labeled.astype(str)
    )
    assert not set(got.ids.tolist()) & set(labeled.tolist())
    assert_same(got, expected)


def test_dask_local_cluster_equals_local_path(pool_files):
    distributed = pytest.importorskip("distributed")
    local = parquet_batch(pool_files, seed=9, sample=200, chunk=128)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = parquet_batch(
            pool_files,
            seed=9,
            sample=200,
            chunk=128,
            scheduler=cluster.scheduler_address,
        )
    assert_same(remote, local)
    np.testing.assert_array_equal(remote.positions, local.positions)


def test_bad_paths_and_columns(pool_files, tmp_path):
    folder = pool_files[0]
    with pytest.raises(InvalidInputError, match="No Parquet file"):
        ParquetPool.open(
            str(tmp_path / "nothing-*.parquet"), id_column="id", feature_columns=COLUMNS
        )
    with pytest.raises(InvalidInputError, match="lacks column"):
        ParquetPool.open(
            str(folder / "*.parquet"), id_column="key", feature_columns=COLUMNS
        )


def test_pool_smaller_than_batch(pool_files):
    folder, _X, ids, model, _X_lab, _correct = pool_files
    pool = ParquetPool.open(
        str(folder / "*.parquet"), id_column="id", feature_columns=COLUMNS
    )
    scorer = ChunkScorer(
        id_column="id",
        feature_columns=COLUMNS,
        model=model,
        exclude_ids=ids[5:].astype(str),
    )
    with pytest.raises(PoolExhausted, match="5 unlabeled"):
        select_parquet(get_policy("default"), pool, scorer, batch_size=40, rng=0)


# --- URLs ----------------------------------------------------------------------


@pytest.fixture
def memory_copy(pool_files):
    """The pool's files copied to fsspec's in-process memory filesystem."""
    fsspec = pytest.importorskip("fsspec")
    folder = pool_files[0]
    root = f"memory://labelwise-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    for path in sorted(folder.glob("*.parquet")):
        fs.pipe(f"{root}/{path.name}", path.read_bytes())
    yield root
    fs.rm(root, recursive=True)


def test_file_urls_read_as_local_paths(pool_files):
    folder = pool_files[0]
    local = expand_paths(str(folder / "*.parquet"))
    assert len(local) == 3
    for url in (
        f"file://{folder}/*.parquet",
        f"file://{folder}",
        f"file://localhost{folder}/*.parquet",
    ):
        assert expand_paths(url) == local
    assert expand_paths(f"file://{local[1]}") == [local[1]]


@pytest.mark.parametrize("spec", ["{root}/*.parquet", "{root}", "{root}/"])
def test_memory_url_pool_equals_the_local_pool(pool_files, memory_copy, spec):
    _folder, _X, _ids, model, X_lab, correct = pool_files
    url = spec.format(root=memory_copy)
    pool = ParquetPool.open(url, id_column="id", feature_columns=COLUMNS)
    assert len(pool.paths) == 3 and pool.n_rows == N
    assert all(p.startswith("memory://") for p in pool.paths)
    scorer = ChunkScorer(id_column="id", feature_columns=COLUMNS, model=model)
    common = {
        "batch_size": 40,
        "rng": 2,
        "chunk_size": 500,
        "sample_size": 300,
        "X_labeled": X_lab,
        "labeled_correct": correct,
    }
    remote = select_parquet(get_policy("default"), pool, scorer, **common)
    local = parquet_batch(pool_files, seed=2, sample=300, chunk=500)
    assert_same(remote, local)
    rows = pool.take(remote.positions[:5])
    assert [r["id"] for r in rows] == remote.ids[:5].tolist()


def test_missing_url_files_are_reported(memory_copy):
    for url in (f"{memory_copy}/nothing.parquet", f"{memory_copy}/x-*.parquet"):
        with pytest.raises(InvalidInputError, match="No Parquet file"):
            expand_paths(url)


def test_url_errors_name_the_package_to_install(monkeypatch):
    registry = pytest.importorskip("fsspec.registry")
    # A filesystem fsspec knows by name whose package is not installed.
    monkeypatch.setitem(
        registry.known_implementations,
        "lwmissing",
        {
            "class": "labelwise_no_such_fs.FileSystem",
            "err": "Install labelwise-no-such-fs to access lwmissing",
        },
    )
    with pytest.raises(ConfigError, match="labelwise-no-such-fs") as info:
        expand_paths("lwmissing://bucket/pool-*.parquet")
    assert "pip install" in info.value.hint
    with pytest.raises(ConfigError, match="no filesystem for 'nope'"):
        expand_paths("nope://bucket/pool-*.parquet")
    monkeypatch.setitem(sys.modules, "fsspec", None)  # fsspec not installed
    with pytest.raises(ConfigError, match="needs fsspec") as info:
        expand_paths("s3://bucket/pool-*.parquet")
    assert "labelwise[scale]" in info.value.hint
