"""Batches from pools read in chunks: locally, from Parquet, or as Dask tasks.

Every path runs the same chunk function, :func:`score_and_reduce`: score a
table of rows (:class:`ChunkScorer`) and cut it to its shortlist
(:func:`labelwise.policy._shortlist.reduce_chunk`). Shortlists merge as they
arrive, so memory holds one chunk and one shortlist whatever the pool's size;
the batch is then built on the merged shortlist exactly as
:func:`labelwise.policy.build_batch` builds it in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise._typing import RandomState
from labelwise._validation import check_int
from labelwise.exceptions import ConfigError, PoolExhausted
from labelwise.policy._batch import Batch, select_from_shortlist
from labelwise.policy._shortlist import (
    PoolChunk,
    ShortlistPlan,
    make_plan,
    merge_shortlists,
    reduce_chunk,
)
from labelwise.policy._spec import BatchPolicy
from labelwise.scale._parquet import ParquetPiece, ParquetPool

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkScorer",
    "score_and_reduce",
    "select_chunked",
    "select_parquet",
]

#: Rows read and scored at a time (100,000 rows x 64 float32 features: 25 MB).
DEFAULT_CHUNK_SIZE = 100_000

#: Scores a chunk predicted: (ids as strings, probabilities), for the score cache.
Fresh = tuple[npt.NDArray[Any], npt.NDArray[np.float64]]


@dataclass(frozen=True, eq=False)
class ChunkScorer:
    """Turns a table of pool rows into a :class:`PoolChunk` (picklable for Dask).

    Attributes
    ----------
    id_column : str
        Column of the item ids.
    feature_columns : tuple of str
        Numeric columns the model reads (tabular pools).
    text_column : str, optional
        Column of the texts (text pools).
    model : object, optional
        A fitted classifier; its ``predict_proba`` gives ``probas``. None at
        cold start.
    featurizer : object, optional
        A fitted transformer whose ``transform`` gives the geometry ``X``;
        without one a tabular pool's feature matrix is its geometry.
    as_frame : bool
        The model reads a DataFrame of the feature columns (else a float matrix).
    want_probas, want_X : bool
        Whether the policy reads probabilities / geometry at all.
    exclude_ids : ndarray, optional
        Ids (compared as strings) of rows to leave out: items already labeled.
    cached_ids, cached_probas : ndarray, optional
        Sorted ids (as strings) whose probabilities this model already gave
        (the score cache): those rows are not predicted again. The rows that
        are predicted come back from :meth:`scored` as the chunk's fresh scores.
    """

    id_column: str
    feature_columns: tuple[str, ...] = ()
    text_column: str | None = None
    model: Any = None
    featurizer: Any = None
    as_frame: bool = False
    want_probas: bool = True
    want_X: bool = True
    exclude_ids: npt.NDArray[Any] | None = field(default=None)
    cached_ids: npt.NDArray[Any] | None = field(default=None)
    cached_probas: npt.NDArray[np.float64] | None = field(default=None)

    def features(self, table: Any) -> Any:
        """What the model reads of ``table``: texts, a DataFrame or a matrix."""
        if self.text_column:
            column = table.column(self.text_column).to_pylist()
            return ["" if t is None else str(t) for t in column]
        if self.as_frame:
            return table.select(list(self.feature_columns)).to_pandas()
        columns = [
            table.column(c).to_numpy(zero_copy_only=False) for c in self.feature_columns
        ]
        return np.column_stack(columns).astype(np.float32, copy=False)

    def __call__(self, table: Any, offset: int) -> PoolChunk:
        """The chunk of ``table``'s rows, whose first row is global row ``offset``."""
        return self.scored(table, offset)[0]

    def _probas(self, feats: Any, ids: npt.NDArray[Any]) -> tuple[Any, Fresh | None]:
        """Probabilities of the rows: cached ones looked up, the rest predicted."""
        if self.cached_ids is None or self.cached_probas is None:
            probas = np.asarray(self.model.predict_proba(feats), dtype=np.float64)
            return probas, (ids.astype(str), probas)
        keys = ids.astype(str)
        probas = np.full((len(keys), self.cached_probas.shape[1]), np.nan)
        found = np.zeros(len(keys), dtype=bool)
        if self.cached_ids.size:
            pos = np.minimum(
                np.searchsorted(self.cached_ids, keys), self.cached_ids.size - 1
            )
            found = self.cached_ids[pos] == keys
            probas[found] = self.cached_probas[pos[found]]
        rows = np.flatnonzero(~found)
        if rows.size == 0:
            return probas, None
        if isinstance(feats, list):
            part: Any = [feats[int(i)] for i in rows]
        elif hasattr(feats, "iloc"):
            part = feats.iloc[rows]
        else:
            part = feats[rows]
        fresh = np.asarray(self.model.predict_proba(part), dtype=np.float64)
        probas[rows] = fresh
        return probas, (keys[rows], fresh)

    def scored(self, table: Any, offset: int) -> tuple[PoolChunk, Fresh | None]:
        """The chunk and the scores predicted for it (None: none predicted)."""
        ids = np.asarray(table.column(self.id_column).to_numpy(zero_copy_only=False))
        index = np.arange(offset, offset + len(ids), dtype=np.int64)
        if self.exclude_ids is not None and self.exclude_ids.size:
            keep = ~np.isin(ids.astype(str), self.exclude_ids)
            if not keep.all():
                ids, index = ids[keep], index[keep]
                table = table.filter(keep)
        feats = self.features(table)
        probas = X = fresh = None
        if self.want_probas and self.model is not None and len(ids):
            probas, fresh = self._probas(feats, ids)
        if self.want_X:
            if self.featurizer is not None:
                X = np.asarray(self.featurizer.transform(feats), dtype=np.float64)
            elif not self.text_column:
                X = np.asarray(feats, dtype=np.float32)
        return PoolChunk(index=index, ids=ids, probas=probas, X=X), fresh


def score_and_reduce(
    plan: ShortlistPlan, scorer: ChunkScorer, table: Any, offset: int
) -> tuple[PoolChunk, int]:
    """The chunk function: score ``table`` and keep its shortlist (and its size).

    The same function runs in this process and as a Dask task.
    """
    part, rows, _ = _reduce_scored(plan, scorer, table, offset)
    return part, rows


def _reduce_scored(
    plan: ShortlistPlan, scorer: ChunkScorer, table: Any, offset: int
) -> tuple[PoolChunk, int, Fresh | None]:
    chunk, fresh = scorer.scored(table, offset)
    return reduce_chunk(plan, chunk), len(chunk), fresh


def _join(parts: list[Fresh]) -> Fresh | None:
    if not parts:
        return None
    return (
        np.concatenate([ids for ids, _ in parts]),
        np.concatenate([probas for _, probas in parts]),
    )


def _finish(
    plan: ShortlistPlan,
    generator: np.random.Generator,
    shortlist: PoolChunk | None,
    n_rows: int,
    classes: Sequence[Any] | None,
) -> Batch:
    if shortlist is None or n_rows < plan.batch_size:
        raise PoolExhausted(
            f"Pool exhausted: {n_rows} unlabeled items, batch asks for "
            f"{plan.batch_size}.",
            hint="Lower the batch size or add Parquet files to the pool.",
        )
    return select_from_shortlist(
        plan, shortlist, rng=generator, classes=classes, n_pool=n_rows
    )


def select_chunked(
    policy: BatchPolicy,
    chunks: Iterable[PoolChunk],
    *,
    batch_size: int,
    rng: RandomState = None,
    classes: Sequence[Any] | None = None,
    sample_size: int | None = None,
    X_labeled: Any = None,
    labeled_correct: Any = None,
    X_failures: Any = None,
) -> Batch:
    """Build a batch from scored chunks of a pool, holding one chunk at a time.

    Gives the batch :func:`build_batch` gives on the concatenated pool for the
    same ``rng`` seed (the chunks' ``index`` must be the rows' positions in
    that pool).
    """
    plan, generator = make_plan(
        policy,
        batch_size=batch_size,
        rng=rng,
        sample_size=sample_size,
        X_labeled=X_labeled,
        labeled_correct=labeled_correct,
        X_failures=X_failures,
    )
    shortlist: PoolChunk | None = None
    n_rows = 0
    for chunk in chunks:
        n_rows += len(chunk)
        part = reduce_chunk(plan, chunk)
        shortlist = (
            part if shortlist is None else merge_shortlists(plan, [shortlist, part])
        )
    return _finish(plan, generator, shortlist, n_rows, classes)


def _piece_task(
    pool: ParquetPool,
    piece: ParquetPiece,
    plan: ShortlistPlan,
    scorer: ChunkScorer,
    chunk_size: int,
    keep_fresh: bool = False,
) -> tuple[PoolChunk | None, int, Fresh | None]:
    """One Dask task: the shortlist of one Parquet row group (and fresh scores)."""
    shortlist: PoolChunk | None = None
    n_rows = 0
    fresh: list[Fresh] = []
    for offset, table in pool.iter_piece(piece, chunk_size):
        part, rows, scores = _reduce_scored(plan, scorer, table, offset)
        n_rows += rows
        if keep_fresh and scores is not None:
            fresh.append(scores)
        shortlist = (
            part if shortlist is None else merge_shortlists(plan, [shortlist, part])
        )
    return shortlist, n_rows, _join(fresh)


def _dask_client(scheduler: str) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            "--dask-scheduler needs Dask's distributed package, which is not "
            "installed.",
            hint="pip install 'labelwise[scale]', or leave out --dask-scheduler.",
        ) from exc
    return Client(scheduler)  # type: ignore[no-untyped-call]


def select_parquet(
    policy: BatchPolicy,
    pool: ParquetPool,
    scorer: ChunkScorer,
    *,
    batch_size: int,
    rng: RandomState = None,
    classes: Sequence[Any] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    scheduler: str | None = None,
    sample_size: int | None = None,
    X_labeled: Any = None,
    labeled_correct: Any = None,
    X_failures: Any = None,
    progress: Callable[[int], None] | None = None,
    on_scores: Callable[[Fresh], None] | None = None,
) -> Batch:
    """Build a batch from a Parquet pool read in chunks of ``chunk_size`` rows.

    With ``scheduler`` (a Dask scheduler address) each Parquet row group is a
    Dask task running the same chunk function; shortlists are merged here as
    they arrive. Either way the batch equals the in-memory one for the seed.
    ``progress`` is called with the number of rows done after each chunk;
    ``on_scores`` with each chunk's (or Dask task's) predicted scores, which
    is how the score cache learns the rows it lacked.
    """
    chunk_size = check_int(
        chunk_size, param="chunk_size", owner="select_parquet", low=1
    )
    plan, generator = make_plan(
        policy,
        batch_size=batch_size,
        rng=rng,
        sample_size=sample_size,
        X_labeled=X_labeled,
        labeled_correct=labeled_correct,
        X_failures=X_failures,
    )
    shortlist: PoolChunk | None = None
    n_rows = done = 0

    def merge(
        part: PoolChunk | None, rows: int, read: int, fresh: Fresh | None
    ) -> None:
        nonlocal shortlist, n_rows, done
        n_rows += rows
        done += read
        if on_scores is not None and fresh is not None:
            on_scores(fresh)
        if part is not None:
            shortlist = (
                part if shortlist is None else merge_shortlists(plan, [shortlist, part])
            )
        if progress is not None:
            progress(done)

    if scheduler is None:
        for offset, table in pool.iter_tables(chunk_size):
            part, rows, fresh = _reduce_scored(plan, scorer, table, offset)
            merge(part, rows, table.num_rows, fresh)
    else:
        from distributed import as_completed

        client = _dask_client(scheduler)
        try:
            pieces = pool.pieces()
            shared = client.scatter([pool, plan, scorer], broadcast=True)
            futures = {
                client.submit(
                    _piece_task,
                    shared[0],
                    piece,
                    shared[1],
                    shared[2],
                    chunk_size,
                    on_scores is not None,
                    pure=False,
                ): piece
                for piece in pieces
            }
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                part, rows, fresh = future.result()
                merge(part, rows, futures[future].n_rows, fresh)
                future.release()
        finally:
            client.close()
    return _finish(plan, generator, shortlist, n_rows, classes)
