"""Counter-based random keys per pool row, and orders that use them.

Every random choice a batch makes (the control slice, random fill, tie-breaks,
the within-bucket order of confidence buckets) reads one key per row that
depends only on ``(key_seed, global row index)``. "The k rows with the smallest
keys" is then the same set whether it is computed over the whole pool at once
or per chunk and merged, which is what lets a pool be scored in chunks (or by
Dask workers) and still give the batch the in-memory path gives.

The keys are SplitMix64 (Steele, Lea and Flood 2014) of the seeded index: a
few vectorised uint64 operations per row, uniform in ``[0, 1)`` with 53 bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise._typing import FloatArray, IndexArray

__all__ = ["key_seed_from", "row_keys", "smallest_keys", "top_rows"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK63 = (1 << 63) - 1


def key_seed_from(generator: np.random.Generator) -> int:
    """Draw the key seed of one batch from its generator (first draw, always)."""
    return int(generator.integers(0, _MASK63, dtype=np.int64))


def row_keys(key_seed: int, index: npt.ArrayLike) -> FloatArray:
    """Uniform ``[0, 1)`` keys of the rows at global positions ``index``.

    Parameters
    ----------
    key_seed : int
        From :func:`key_seed_from`; the same seed gives the same keys.
    index : array-like of int
        Global row positions (``>= 0``) in the pool.

    Returns
    -------
    keys : ndarray of shape index.shape, float64
    """
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    seed = np.full(1, int(key_seed) & _MASK63, dtype=np.uint64)
    z = (idx + np.uint64(1)) * _GOLDEN + seed * _MIX2  # arrays: uint64 wraps
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return np.asarray((z >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def top_rows(
    scores: npt.NDArray[Any],
    keys: FloatArray,
    index: npt.NDArray[Any],
    n: int,
    *,
    candidates: IndexArray | None = None,
) -> IndexArray:
    """Local positions of the ``n`` best rows: score descending, then key, then index.

    The order is total (the global index breaks exact key ties), so the best
    ``n`` of a union of chunks is the best ``n`` of the chunks' own best ``n``.
    Only finite scores count. Cost is O(rows) plus a sort of about ``n`` rows.
    """
    pool = (
        np.flatnonzero(np.isfinite(scores))
        if candidates is None
        else candidates[np.isfinite(scores[candidates])]
    )
    if n <= 0 or pool.size == 0:
        return np.empty(0, dtype=np.intp)
    s = scores[pool]
    if n < pool.size:
        kth = np.partition(s, s.size - n)[s.size - n]
        keep = s >= kth
        pool, s = pool[keep], s[keep]
    order = np.lexsort((index[pool], keys[pool], -s))[:n]
    return np.asarray(pool[order], dtype=np.intp)


def smallest_keys(
    keys: FloatArray,
    index: npt.NDArray[Any],
    n: int,
    *,
    candidates: IndexArray | None = None,
) -> IndexArray:
    """Local positions of the ``n`` rows with the smallest keys, smallest first.

    A uniform sample without replacement of the candidates (the control slice
    and the reservoir sample of a shortlist).
    """
    pool = np.arange(keys.shape[0]) if candidates is None else candidates
    if n <= 0 or pool.size == 0:
        return np.empty(0, dtype=np.intp)
    k = keys[pool]
    if n < pool.size:
        kth = np.partition(k, n - 1)[n - 1]
        keep = k <= kth
        pool, k = pool[keep], k[keep]
    order = np.lexsort((index[pool], k))[:n]
    return np.asarray(pool[order], dtype=np.intp)
