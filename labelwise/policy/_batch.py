"""Build an annotation batch from a :class:`BatchPolicy` and a scoring context."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise._rowkeys import smallest_keys
from labelwise._typing import FloatArray, IndexArray, RandomState
from labelwise._validation import check_int, check_probas
from labelwise.exceptions import ConfigError, InvalidInputError, PoolExhausted
from labelwise.policy._shortlist import (
    PoolChunk,
    ShortlistPlan,
    make_plan,
    merge_shortlists,
    reduce_chunk,
)
from labelwise.policy._spec import BatchPolicy, MixComponent
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = ["Batch", "build_batch", "select_from_shortlist"]

#: Reason and strategy recorded on control-slice picks.
RANDOM = "random"
#: Strategy recorded on picks that fill slots no component could take.
RANDOM_FILL = "random_fill"


@dataclass(frozen=True, eq=False)
class Batch:
    """The items chosen for one annotation batch, in pick order.

    Attributes
    ----------
    positions : ndarray of shape (b,), int
        Pool positions (rows of the scoring context), in pick order.
    ids : ndarray of shape (b,)
        Item ids of those positions (the positions themselves when no ids
        were given).
    reasons : tuple of str
        Why each item was picked: a component's reason, or ``"random"`` for the
        control slice and for random fill.
    strategies : tuple of str
        The strategy that picked each item: a strategy name, ``"random"`` for
        the control slice, ``"random_fill"`` for slots no component could take.
    scores : ndarray of shape (b,)
        The picking strategy's score of each item (after the per-unit-cost
        transform when the policy is cost aware); NaN for random picks.
    policy_version : str
        :attr:`BatchPolicy.version` of the policy that built the batch.
    """

    positions: IndexArray
    ids: npt.NDArray[Any]
    reasons: tuple[str, ...]
    strategies: tuple[str, ...]
    scores: FloatArray
    policy_version: str

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def counts_by_reason(self) -> dict[str, int]:
        """Number of items per reason, in order of first appearance."""
        counts: dict[str, int] = {}
        for reason in self.reasons:
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per item, in pick order.

        Keys: ``id`` (a Python scalar), ``reason``, ``strategy``, ``score``
        (None for random picks) and ``rank`` (1 for the first pick).
        """
        ids = self.ids.tolist()
        scores = self.scores.tolist()
        return [
            {
                "id": ids[i],
                "reason": self.reasons[i],
                "strategy": self.strategies[i],
                "score": None if math.isnan(scores[i]) else scores[i],
                "rank": i + 1,
            }
            for i in range(len(self))
        ]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts_by_reason().items())
        return (
            f"Batch(size={len(self)}, policy_version={self.policy_version!r}, {counts})"
        )


def _largest_remainder(total: int, shares: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``shares`` (Hamilton's method).

    Each part gets the floor of its quota; the leftover units go to the largest
    fractional remainders, ties to the earlier share. Parts sum to ``total``.
    """
    if not shares or total <= 0:
        return [0] * len(shares)
    weight = math.fsum(shares)
    quotas = [total * s / weight for s in shares]
    counts = [math.floor(q + 1e-9) for q in quotas]
    # Round remainders so that float noise does not break exact ties.
    remainders = [round(q - c, 9) for q, c in zip(quotas, counts, strict=True)]
    leftover = total - sum(counts)
    order = sorted(range(len(shares)), key=lambda i: (-remainders[i], i))
    for i in order[: max(leftover, 0)]:
        counts[i] += 1
    return counts


def _top_n(
    scores: FloatArray,
    candidates: IndexArray,
    n: int,
    keys: FloatArray,
    index: npt.NDArray[np.int64],
) -> IndexArray:
    """The ``n`` best ``candidates`` by score, best first, ties by ``keys``, ``index``.

    Uses ``np.partition`` to cut the candidates to those at or above the n-th
    best score before sorting, so the cost is O(c) plus a sort of ~n items.
    """
    if n <= 0 or candidates.size == 0:
        return np.empty(0, dtype=np.intp)
    s = scores[candidates]
    if n < candidates.size:
        kth = np.partition(s, s.size - n)[s.size - n]
        keep = s >= kth
        candidates, s = candidates[keep], s[keep]
    order = np.lexsort((index[candidates], keys[candidates], -s))[:n]
    return np.asarray(candidates[order], dtype=np.intp)


def _cost_transform() -> Callable[[FloatArray, FloatArray], FloatArray]:
    module = importlib.import_module("labelwise.strategies")
    transform = getattr(module, "per_unit_cost", None)
    if transform is None:
        raise ConfigError(
            "A cost-aware BatchPolicy needs labelwise.strategies.per_unit_cost, "
            "which this installation lacks.",
            hint="Set cost_aware=False, or upgrade labelwise.",
        )
    return transform  # type: ignore[no-any-return]


class _Builder:
    """The mutable state of one :func:`build_batch` call."""

    def __init__(
        self,
        policy: BatchPolicy,
        context: ScoringContext,
        n: int,
        rng: np.random.Generator,
        predicted: IndexArray | None,
        quota_shares: list[float],
        index: npt.NDArray[np.int64],
    ) -> None:
        assert context.row_keys is not None
        self.policy = policy
        self.context = context
        self.keys = np.asarray(context.row_keys, dtype=np.float64)
        self.index = index
        self.n = n
        self.rng = rng
        self.predicted = predicted
        self.quota_shares = quota_shares
        self.chosen = np.zeros(n, dtype=bool)
        self.positions: list[IndexArray] = []
        self.reasons: list[str] = []
        self.strategies: list[str] = []
        self.scores: list[FloatArray] = []

    def add(
        self, picks: IndexArray, reason: str, strategy: str, scores: FloatArray
    ) -> None:
        self.chosen[picks] = True
        self.positions.append(picks)
        self.reasons.extend([reason] * picks.size)
        self.strategies.extend([strategy] * picks.size)
        self.scores.append(scores)

    def add_random(self, count: int, strategy: str) -> None:
        if count <= 0:
            return
        # The smallest row keys: uniform without replacement, and the same rows
        # whether the pool was scored whole or in chunks.
        pool = np.flatnonzero(~self.chosen)
        picks = smallest_keys(self.keys, self.index, count, candidates=pool)
        self.add(picks, RANDOM, strategy, np.full(count, np.nan))

    def selected(self) -> IndexArray:
        if not self.positions:
            return np.empty(0, dtype=np.intp)
        return np.concatenate(self.positions).astype(np.intp, copy=False)

    def run(self, component: MixComponent, strategy: Strategy, want: int) -> int:
        """Let ``component`` pick up to ``want`` items; returns how many it took."""
        if want <= 0:
            return 0
        context = replace(self.context, selected=self.selected())
        raw = strategy.score(context, batch_size=want, rng=self.rng)
        scores = np.asarray(raw, dtype=np.float64)
        if scores.shape != (self.n,):
            raise InvalidInputError(
                f"Strategy {component.strategy!r} must return one score per pool item, "
                f"shape ({self.n},). Got shape {scores.shape} instead.",
                hint="Fix the strategy's score() to return an (n,) array.",
            )
        if (
            self.policy.cost_aware
            and self.context.costs is not None
            and np.isfinite(scores).any()
        ):
            costs = np.asarray(self.context.costs, dtype=np.float64)
            finite = np.isfinite(scores)
            per_cost = _cost_transform()(scores[finite], costs[finite])
            scores = np.full(self.n, -np.inf)
            scores[finite] = np.asarray(per_cost, dtype=np.float64)
        eligible = ~self.chosen & np.isfinite(scores)
        keys, index = self.keys, self.index
        picked: list[IndexArray] = []
        if self.predicted is not None:
            minimums = _largest_remainder(want, self.quota_shares)[:-1]
            for label, minimum in enumerate(minimums):
                mask = eligible & (self.predicted == label)
                top = _top_n(scores, np.flatnonzero(mask), minimum, keys, index)
                eligible[top] = False
                picked.append(top)
        taken = sum(p.size for p in picked)
        rest = _top_n(scores, np.flatnonzero(eligible), want - taken, keys, index)
        picked.append(rest)
        picks = np.concatenate(picked).astype(np.intp, copy=False)
        order = np.lexsort((index[picks], keys[picks], -scores[picks]))
        picks = picks[order]
        self.add(picks, component.reason, component.strategy, scores[picks])
        return int(picks.size)

    def batch(self, ids: npt.NDArray[Any] | None) -> Batch:
        local = self.selected()
        positions = np.asarray(self.index[local], dtype=np.intp)
        scores = (
            np.concatenate(self.scores).astype(np.float64, copy=False)
            if self.scores
            else np.empty(0, dtype=np.float64)
        )
        return Batch(
            positions=positions,
            ids=positions.copy() if ids is None else ids[local],
            reasons=tuple(self.reasons),
            strategies=tuple(self.strategies),
            scores=scores,
            policy_version=self.policy.version,
        )


def _pool_size(context: ScoringContext, ids: npt.NDArray[Any] | None) -> int:
    has_arrays = any(
        context.has(f)
        for f in ("probas", "X", "committee_probas", "committee_predictions", "costs")
    )
    if ids is not None:
        if ids.ndim != 1:
            raise InvalidInputError(
                f"ids must be a 1-D array with one id per pool item. Got shape "
                f"{ids.shape} instead.",
                hint="Pass the unlabeled items' ids in pool order.",
            )
        if has_arrays and ids.shape[0] != context.n_items:
            raise InvalidInputError(
                f"ids must hold one id per pool item: the scoring context has "
                f"{context.n_items} items, ids has {ids.shape[0]}.",
                hint="Pass the ids of the same unlabeled items, in the same order.",
            )
        return int(ids.shape[0])
    if not has_arrays:
        raise InvalidInputError(
            "build_batch needs the pool size: the scoring context holds no per-item "
            "array (probas, X, committee_probas, committee_predictions, costs) and "
            "no ids were passed.",
            hint="Pass ids=<the unlabeled items' ids> (at cold start there is "
            "nothing else to count).",
        )
    return context.n_items


def _quota_setup(
    policy: BatchPolicy, context: ScoringContext, classes: Sequence[Any] | None
) -> tuple[IndexArray | None, list[float]]:
    """Predicted class per item and the quota shares in class order (+ the rest)."""
    if not policy.class_quotas or context.probas is None:
        return None, []
    probas = check_probas(context.probas)
    k = probas.shape[1]
    names = [str(c) for c in (range(k) if classes is None else classes)]
    if len(names) != k:
        raise InvalidInputError(
            f"classes must name the {k} columns of probas. Got {len(names)} names "
            "instead.",
            hint="Pass classes=model.classes_.",
        )
    unknown = sorted(set(policy.class_quotas) - set(names))
    if unknown:
        raise ConfigError(
            f"class_quotas names label(s) {', '.join(map(repr, unknown))} that the "
            f"model does not predict; its classes are {', '.join(map(repr, names))}.",
            hint="Pass classes=model.classes_ to build_batch, or fix the labels in "
            "the policy's class_quotas.",
        )
    shares = [float(policy.class_quotas.get(name, 0.0)) for name in names]
    shares.append(max(0.0, 1.0 - math.fsum(shares)))
    predicted = np.asarray(np.argmax(probas, axis=1), dtype=np.intp)
    return predicted, shares


def build_batch(
    policy: BatchPolicy,
    context: ScoringContext,
    *,
    batch_size: int,
    ids: npt.ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
    rng: RandomState = None,
    sample_size: int | None = None,
    chunk_size: int | None = None,
) -> Batch:
    """Choose ``batch_size`` pool items by the policy's strategy mix.

    Selection has two stages (docs/scale.md): the pool is first cut down to a
    shortlist (a uniform sample of ``sample_size`` rows by row key, default
    ``max(10_000, 10 * batch_size)``, plus each pointwise component's best
    ``batch_size`` rows); the batch is then built on the shortlist. A pool no
    larger than the sample is its own shortlist. All randomness reads
    per-row keys of (seed, row position), so scoring the pool in chunks of
    ``chunk_size`` rows (or with :func:`labelwise.scale.select_chunked`) gives
    the same batch.

    1. **Control slice first.** ``r = floor(random_fraction * batch_size + 0.5)``
       positions are drawn uniformly without replacement from the whole pool
       (the ``r`` smallest row keys; reason and strategy ``"random"``, score NaN).
    2. **Apportionment.** The other ``batch_size - r`` slots are split among the
       components by their shares with the largest-remainder method (ties go to
       the earlier component), so the counts are exact.
    3. **Components in spec order.** An available component scores the pool
       (with ``context.selected`` set to the positions chosen so far) and takes
       its top scores among eligible positions (not chosen yet, finite score);
       ties are broken by row key (uniformly at random). With ``cost_aware`` and
       ``context.costs`` the scores go through ``per_unit_cost`` first. With
       ``class_quotas`` and ``context.probas``, each component first takes, per
       predicted class (argmax of probas), the largest-remainder share of its
       slots that the class's quota asks for, then the rest by score.
    4. **Hand-on rule.** Slots a component cannot fill (it is not available,
       e.g. no failures yet or no model at cold start, or it has too few
       eligible items) pass to the next component in spec order, cycling back
       to the first. Slots that no component can take are filled uniformly at
       random from the rest of the pool with reason ``"random"`` and strategy
       ``"random_fill"``, so the control slice (strategy ``"random"``) stays
       exactly ``r`` items.

    Parameters
    ----------
    policy : BatchPolicy
        The mix to apply.
    context : ScoringContext
        What the strategies may read about the ``n`` unlabeled pool items.
    batch_size : int
        Number of items to choose, in ``[1, n]``.
    ids : array-like of shape (n,), optional
        Item id of each pool position; required when the context holds no
        per-item array (cold start), since it then gives the pool size.
    classes : sequence of shape (k,), optional
        Class label of each probas column, compared as strings with the keys
        of ``policy.class_quotas`` (default ``"0"`` .. ``"k-1"``).
    rng : numpy.random.Generator, int or None
        Source of all randomness; the same seed gives the same batch.
    sample_size : int, optional
        Rows of the shortlist's uniform sample (see above).
    chunk_size : int, optional
        Rows scored at a time in the first stage (default: the whole pool);
        it bounds temporaries and never changes the batch.

    Returns
    -------
    Batch
        ``batch_size`` distinct positions in pick order: the control slice, then
        each component's picks best first, then any random fill.

    Raises
    ------
    ConfigError
        If ``batch_size < 1`` or the class quotas name unknown labels.
    PoolExhausted
        If ``batch_size`` exceeds the number of pool items.
    InvalidInputError
        If the pool size cannot be told, or ids/classes/scores have the wrong shape.
    """
    batch_size = check_int(batch_size, param="batch_size", owner="build_batch", low=1)
    id_array = None if ids is None else np.asarray(ids)
    n = _pool_size(context, id_array)
    if batch_size > n:
        raise PoolExhausted(
            f"Pool exhausted: {n} unlabeled items, batch asks for {batch_size}.",
            hint="Lower `batch_size` or import more items (`labelwise import …`).",
        )
    plan, generator = make_plan(
        policy,
        batch_size=batch_size,
        rng=rng,
        sample_size=sample_size,
        X_labeled=context.X_labeled,
        labeled_correct=context.labeled_correct,
        X_failures=context.X_failures,
    )
    step = (
        n
        if chunk_size is None
        else check_int(chunk_size, param="chunk_size", owner="build_batch", low=1)
    )
    shortlist: PoolChunk | None = None
    for start in range(0, n, step):
        part = reduce_chunk(plan, _pool_chunk(context, id_array, start, start + step))
        shortlist = (
            part if shortlist is None else merge_shortlists(plan, [shortlist, part])
        )
    assert shortlist is not None
    return select_from_shortlist(
        plan, shortlist, rng=generator, classes=classes, n_pool=n
    )


def _pool_chunk(
    context: ScoringContext, ids: npt.NDArray[Any] | None, start: int, stop: int
) -> PoolChunk:
    """Rows ``start:stop`` of an in-memory pool, as views."""

    def rows(value: Any) -> Any:
        return None if value is None else np.asarray(value)[start:stop]

    def columns(value: Any) -> Any:
        return None if value is None else np.asarray(value)[:, start:stop]

    n = context.n_items if ids is None else int(ids.shape[0])
    stop = min(stop, n)
    return PoolChunk(
        index=np.arange(start, stop, dtype=np.int64),
        ids=rows(ids),
        probas=rows(context.probas),
        X=rows(context.X),
        costs=rows(context.costs),
        committee_probas=columns(context.committee_probas),
        committee_predictions=columns(context.committee_predictions),
    )


def select_from_shortlist(
    plan: ShortlistPlan,
    shortlist: PoolChunk,
    *,
    rng: np.random.Generator,
    classes: Sequence[Any] | None = None,
    n_pool: int | None = None,
) -> Batch:
    """The second stage: build the batch from a merged shortlist.

    ``rng`` is the generator :func:`make_plan` returned (its key seed already
    drawn). The batch's positions are global row positions; its ids come from
    the shortlist (the positions when it carries none).
    """
    shortlist = shortlist.sorted()
    n = len(shortlist)
    if plan.batch_size > n:
        total = n if n_pool is None else n_pool
        raise PoolExhausted(
            f"Pool exhausted: {total} unlabeled items, batch asks for "
            f"{plan.batch_size}.",
            hint="Lower `batch_size` or import more items (`labelwise import …`).",
        )
    policy, batch_size = plan.policy, plan.batch_size
    context = plan.context(shortlist)
    predicted, quota_shares = _quota_setup(policy, context, classes)
    builder = _Builder(
        policy, context, n, rng, predicted, quota_shares, shortlist.index
    )

    n_random = min(batch_size, math.floor(policy.random_fraction * batch_size + 0.5))
    builder.add_random(n_random, RANDOM)

    components = policy.components
    strategies = plan.strategies
    counts = _largest_remainder(batch_size - n_random, [c.share for c in components])
    open_ = [s.available(context) for s in strategies]
    carry = 0
    for i, component in enumerate(components):
        want = counts[i] + carry
        if not open_[i]:
            carry = want
            continue
        got = builder.run(component, strategies[i], want)
        open_[i] = got == want
        carry = want - got
    for i, component in enumerate(components):  # cycle back for the leftovers
        if carry == 0:
            break
        if open_[i]:
            got = builder.run(component, strategies[i], carry)
            open_[i] = got == carry
            carry -= got
    builder.add_random(carry, RANDOM_FILL)
    return builder.batch(shortlist.ids)
