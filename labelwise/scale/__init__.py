"""Pools beyond memory: chunked scoring, two-stage selection, Parquet and Dask.

:func:`select_chunked` builds a batch from scored chunks,
:func:`select_parquet` from a :class:`ParquetPool` read in chunks (locally, or
as Dask tasks with ``scheduler=``). Both give the batch
:func:`labelwise.policy.build_batch` gives in memory for the same seed;
docs/scale.md explains the shortlist.
"""

from __future__ import annotations

from labelwise.policy._shortlist import (
    DEFAULT_SAMPLE_FLOOR,
    PoolChunk,
    ShortlistPlan,
    make_plan,
    merge_shortlists,
    reduce_chunk,
    shortlist_sample_size,
)
from labelwise.scale._parquet import ParquetPiece, ParquetPool, expand_paths
from labelwise.scale._select import (
    DEFAULT_CHUNK_SIZE,
    ChunkScorer,
    score_and_reduce,
    select_chunked,
    select_parquet,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_SAMPLE_FLOOR",
    "ChunkScorer",
    "ParquetPiece",
    "ParquetPool",
    "PoolChunk",
    "ShortlistPlan",
    "expand_paths",
    "make_plan",
    "merge_shortlists",
    "reduce_chunk",
    "score_and_reduce",
    "select_chunked",
    "select_parquet",
    "shortlist_sample_size",
]
