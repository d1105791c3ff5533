"""Exact vs fast k-means in ``representative_scores`` (issue #8), in one process.

Above ``EXACT_KMEANS_LIMIT`` (candidates x clusters) the representative
strategy clusters with one plain k-means++ seeding and at most 5 Lloyd
iterations instead of 3 greedy restarts run to convergence. This measures, old
(the exact fit at every size, as before) and new interleaved ``--repeats``
times (wall and CPU time; best and median of per-repetition ratios):

1. ``representative_scores`` alone: 600 clusters over 6,000 candidates of 64
   features (what the default policy's 60 % share clusters at batch 1,000);
2. a whole round on a ``--pool``-row pool of ``bench/scale.py``'s mixture
   (``predict_proba`` + ``build_batch``, default policy, batch 1,000) against
   the floor (``predict_proba`` + ``argpartition`` of the margin);
3. the quality given up: the k-means objective (sum of squared distances to the
   cluster means) of the fast fit over the exact one on the same candidates
   (and on MNIST with ``--mnist``), and the mean distance from a candidate to
   its nearest representative.

Run (``nice -n 0`` so a nice'd background job does not slow it down):

    nice -n 0 .venv/bin/python bench/kmeans_fast.py --pool 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scale

from labelwise.policy import build_batch, get_policy
from labelwise.strategies import ScoringContext, _representative
from labelwise.strategies._diversity import (
    _fit_kmeans,
    _fit_kmeans_fast,
)

BATCH = 1000
CLUSTERS = 600
CANDIDATES = 6000


def timed(repeats: int, runs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Wall and CPU seconds of each run, the runs interleaved ``repeats`` times.

    Returns, per run, the best wall time, the best CPU time (this process) and
    every wall time; a shared machine's load shifts between repetitions, so the
    ratios below are also taken per repetition (adjacent runs) and their median
    reported.
    """
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: {
            "wall_best": min(walls[name]),
            "cpu_best": min(cpus[name]),
            "walls": walls[name],
        }
        for name in runs
    }


def ratios(times: dict[str, Any], over: str, name: str) -> dict[str, float]:
    """``name`` over ``over``: best wall, median of per-repetition wall, best CPU."""
    pairs = [
        a / b for a, b in zip(times[name]["walls"], times[over]["walls"], strict=True)
    ]
    return {
        "best_wall": times[name]["wall_best"] / times[over]["wall_best"],
        "median_wall": float(np.median(pairs)),
        "best_cpu": times[name]["cpu_best"] / times[over]["cpu_best"],
    }


def objective(points: np.ndarray, labels: np.ndarray) -> float:
    """Sum of squared distances of the points to their cluster's mean."""
    total = 0.0
    for label in np.unique(labels):
        members = points[labels == label]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def coverage(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean distance of a point to the nearest representative (first of a cluster)."""
    _, first = np.unique(labels, return_index=True)
    reps = points[first]
    d2 = (
        (points**2).sum(axis=1)[:, None]
        - 2.0 * points @ reps.T
        + (reps**2).sum(axis=1)[None, :]
    )
    return float(np.sqrt(np.maximum(d2.min(axis=1), 0.0)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument(
        "--mnist",
        default=None,
        help="an .npz with X (images): also compare the objectives on its first "
        "6,000 images, scaled to [0, 1] and reduced to 64 PCA dimensions "
        "(e.g. ../shared/datasets/mnist_test10k.npz)",
    )
    args = parser.parse_args()

    X_lab, y_lab = scale.mixture(scale.N_LABELED, seed=1)
    X, _ = scale.mixture(args.pool, seed=2)
    model = scale.fitted_model(X_lab, y_lab)
    correct = model.predict(X_lab) == y_lab
    out: dict[str, Any] = {"pool": args.pool, "repeats": args.repeats}

    # 1. representative_scores alone, on the 20,000 first rows.
    probas = model.predict_proba(X[:20_000])
    points = X[:20_000].astype(np.float64)

    def scores(limit: int | None) -> Callable[[], Any]:
        return lambda: _representative.representative_scores(
            probas, points, CLUSTERS, rng=0, exact_limit=limit
        )

    alone = timed(
        args.repeats,
        {"exact": scores(None), "fast": scores(_representative.EXACT_KMEANS_LIMIT)},
    )
    out["representative_scores_s"] = alone
    out["representative_scores_exact_over_fast"] = ratios(alone, "fast", "exact")
    print(
        json.dumps(
            {"representative_scores": out["representative_scores_exact_over_fast"]}
        ),
        flush=True,
    )

    # 3. quality on the same candidates (the 6,000 most uncertain).
    part = np.sort(probas, axis=1)
    u = 1.0 - (part[:, -1] - part[:, -2])
    candidates = points[np.argsort(-u, kind="stable")[:CANDIDATES]]
    _, exact_labels = _fit_kmeans(candidates, CLUSTERS, seed=1, n_init=3)
    _, fast_labels = _fit_kmeans_fast(candidates, CLUSTERS, seed=1)
    out["objective_fast_over_exact"] = objective(candidates, fast_labels) / objective(
        candidates, exact_labels
    )
    out["coverage"] = {
        "exact": coverage(candidates, exact_labels),
        "fast": coverage(candidates, fast_labels),
        "top_600_by_uncertainty": coverage(
            candidates, np.minimum(np.arange(CANDIDATES), CLUSTERS - 1)
        ),
    }
    out["representatives"] = {
        "exact": int(np.unique(exact_labels).size),
        "fast": int(np.unique(fast_labels).size),
    }
    if args.mnist:
        from sklearn.decomposition import PCA

        images = np.load(args.mnist)["X"][:CANDIDATES]
        flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
        digits = PCA(64, random_state=0).fit_transform(flat)
        _, exact_digits = _fit_kmeans(digits, CLUSTERS, seed=1, n_init=3)
        _, fast_digits = _fit_kmeans_fast(digits, CLUSTERS, seed=1)
        out["mnist_objective_fast_over_exact"] = objective(
            digits, fast_digits
        ) / objective(digits, exact_digits)
    keys = ("objective_fast_over_exact", "mnist_objective_fast_over_exact", "coverage")
    print(json.dumps({k: out[k] for k in keys if k in out}))

    # 2. the whole round against the floor.
    def floor() -> None:
        p = model.predict_proba(X)
        part = np.partition(p, scale.N_CLASSES - 2, axis=1)
        np.argpartition(part[:, -1] - part[:, -2], BATCH)[:BATCH]

    def exact_everywhere(points: Any, n_clusters: int, *, seed: int) -> Any:
        return _fit_kmeans(points, n_clusters, seed=seed, n_init=3)

    def round_(fast: bool) -> Callable[[], Any]:
        def run() -> None:
            if not fast:  # the old behaviour: exact k-means at every size
                _representative._fit_kmeans_fast = exact_everywhere  # type: ignore[assignment]
            try:
                context = ScoringContext(
                    probas=model.predict_proba(X),
                    X=X,
                    X_labeled=X_lab,
                    labeled_correct=correct,
                )
                build_batch(get_policy("default"), context, batch_size=BATCH, rng=0)
            finally:
                _representative._fit_kmeans_fast = _fit_kmeans_fast

        return run

    rounds = timed(
        args.repeats,
        {
            "floor": floor,
            "old_exact": round_(fast=False),
            "new": round_(fast=True),
        },
    )
    out["round_s"] = rounds
    out["round_x_floor"] = {k: ratios(rounds, "floor", k) for k in ("old_exact", "new")}
    print(json.dumps({"round_x_floor": out["round_x_floor"]}))
    print(json.dumps({k: (v["wall_best"], v["cpu_best"]) for k, v in rounds.items()}))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
