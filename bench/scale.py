"""Speed and memory of a round on large pools (issue #8).

Every configuration runs in a fresh subprocess (``--child``) under the parent's
``nice`` level, so its peak RSS (``resource.getrusage``) is its own:

- ``floor``: calibrated logistic-regression ``predict_proba`` on the pool plus
  ``np.argpartition`` of the margin for the batch: the least any uncertainty
  round can cost;
- ``labelwise``: ``predict_proba`` plus ``build_batch`` with the default policy
  (10 % random, 60 % representative-within-margin, 20 % k-center, 10 % error-driven);
- ``coreset``, ``typiclust`` (scikit-activeml) and ``ranked_batch`` (modAL) on
  the same pool, run by the interpreter of ``bench/.venv-scale`` when it exists
  (see bench/README.md), skipped when missing, failing or over the time cap;
- ``parquet``: ``select_parquet`` over a Parquet pool of 2.5 M, 5 M and 10 M
  rows, generated once into a temporary folder and deleted afterwards.

Pools are seeded Gaussian mixtures (4 classes, float32); the model is fitted
once per child on 1,000 labeled rows and is not timed. Run:

    nice -n 19 .venv/bin/python bench/scale.py --out bench/results/scale
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COMPETITOR_PYTHON = ROOT / "bench" / ".venv-scale" / "bin" / "python"
N_FEATURES = 64
N_CLASSES = 4
N_LABELED = 1000
BATCH = 1000
PARQUET_FILE_ROWS = 500_000


def mixture(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of a 4-class Gaussian mixture in 64 dimensions (float32)."""
    centres = np.random.default_rng(12345).normal(
        scale=1.2, size=(N_CLASSES, N_FEATURES)
    )
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=n)
    X = np.empty((n, N_FEATURES), dtype=np.float32)
    step = 1_000_000
    for start in range(0, n, step):
        stop = min(start + step, n)
        X[start:stop] = rng.standard_normal(
            (stop - start, N_FEATURES), dtype=np.float32
        )
        X[start:stop] += centres[y[start:stop]].astype(np.float32)
    return X, y


def fitted_model(X_lab: np.ndarray, y_lab: np.ndarray) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    model = CalibratedClassifierCV(LogisticRegression(max_iter=500), cv=3)
    return model.fit(X_lab, y_lab)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- children ----------------------------------------------------------------


def child_in_memory(config: str, n: int) -> dict[str, Any]:
    X_lab, y_lab = mixture(N_LABELED, seed=1)
    X, _ = mixture(n, seed=2)
    if config in ("floor", "labelwise"):
        model = fitted_model(X_lab, y_lab)
    start = time.perf_counter()
    if config == "floor":
        probas = model.predict_proba(X)
        part = np.partition(probas, N_CLASSES - 2, axis=1)
        margin = part[:, -1] - part[:, -2]
        picks = np.argpartition(margin, BATCH)[:BATCH]
        assert picks.size == BATCH
    elif config == "labelwise":
        from labelwise.policy import build_batch, get_policy
        from labelwise.strategies import ScoringContext

        probas = model.predict_proba(X)
        correct = model.predict(X_lab) == y_lab
        context = ScoringContext(
            probas=probas, X=X, X_labeled=X_lab, labeled_correct=correct
        )
        batch = build_batch(get_policy("default"), context, batch_size=BATCH, rng=0)
        assert len(batch) == BATCH
    elif config in ("coreset", "typiclust"):
        from skactiveml.pool import CoreSet, TypiClust
        from skactiveml.utils import MISSING_LABEL

        y = np.full(n + N_LABELED, MISSING_LABEL)
        y[:N_LABELED] = y_lab
        data = np.vstack([X_lab, X])
        qs = (
            CoreSet(random_state=0)
            if config == "coreset"
            else TypiClust(random_state=0)
        )
        picks = qs.query(X=data, y=y, batch_size=BATCH)
        assert len(picks) == BATCH
    elif config == "ranked_batch":
        from modAL.batch import uncertainty_batch_sampling
        from modAL.models import ActiveLearner
        from sklearn.linear_model import LogisticRegression

        learner = ActiveLearner(
            estimator=LogisticRegression(max_iter=500),
            query_strategy=uncertainty_batch_sampling,
            X_training=X_lab,
            y_training=y_lab,
        )
        picks, _ = learner.query(X, n_instances=BATCH)
        assert len(picks) == BATCH
    else:
        raise SystemExit(f"unknown config {config}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def child_parquet(folder: str, n_files: int, chunk_size: int) -> dict[str, Any]:
    from labelwise.policy import get_policy
    from labelwise.scale import ChunkScorer, ParquetPool, select_parquet

    X_lab, y_lab = mixture(N_LABELED, seed=1)
    model = fitted_model(X_lab, y_lab)
    columns = tuple(f"f{i}" for i in range(N_FEATURES))
    paths = sorted(str(p) for p in Path(folder).glob("*.parquet"))[:n_files]
    pool = ParquetPool.open(paths, id_column="id", feature_columns=columns)
    scorer = ChunkScorer(id_column="id", feature_columns=columns, model=model)
    start = time.perf_counter()
    batch = select_parquet(
        get_policy("default"),
        pool,
        scorer,
        batch_size=BATCH,
        rng=0,
        chunk_size=chunk_size,
        X_labeled=X_lab,
        labeled_correct=model.predict(X_lab) == y_lab,
    )
    seconds = time.perf_counter() - start
    assert len(batch) == BATCH
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rows": pool.n_rows}


# --- parent ------------------------------------------------------------------


def run_child(python: str, args: list[str], cap: float) -> dict[str, Any]:
    command = [python, __file__, "--child", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=cap, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"skipped": f"over the {cap:.0f} s cap"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"failed: {last[:120]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def write_parquet(folder: Path, n_rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"f{i}" for i in range(N_FEATURES)]
    for k, start in enumerate(range(0, n_rows, PARQUET_FILE_ROWS)):
        X, _ = mixture(PARQUET_FILE_ROWS, seed=100 + k)
        ids = np.arange(start, start + PARQUET_FILE_ROWS, dtype=np.int64)
        table = pa.table({"id": ids, **{c: X[:, i] for i, c in enumerate(names)}})
        pq.write_table(table, folder / f"pool-{k:03d}.parquet", row_group_size=250_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--parquet-rows", default="2500000,5000000,10000000")
    parser.add_argument("--competitors", default="coreset,typiclust,ranked_batch")
    parser.add_argument("--cap", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--out", default="bench/results/scale")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        if args.child[0] == "parquet":
            result = child_parquet(
                args.child[1], int(args.child[2]), int(args.child[3])
            )
        else:
            result = child_in_memory(args.child[0], int(args.child[1]))
        print(json.dumps(result))
        return

    rows: list[dict[str, Any]] = []
    competitors = [c for c in args.competitors.split(",") if c]
    has_venv = COMPETITOR_PYTHON.exists()
    for n in [int(s) for s in args.sizes.split(",") if s]:
        floor = run_child(sys.executable, ["floor", str(n)], args.cap)
        rows.append({"pool": f"{n:,} in memory", "config": "floor", **floor})
        for config in ["labelwise", *competitors]:
            if config == "labelwise":
                result = run_child(sys.executable, [config, str(n)], args.cap)
            elif has_venv:
                result = run_child(str(COMPETITOR_PYTHON), [config, str(n)], args.cap)
            else:
                result = {"skipped": "bench/.venv-scale missing"}
            if "seconds" in result and "seconds" in floor:
                result["ratio"] = result["seconds"] / floor["seconds"]
            rows.append({"pool": f"{n:,} in memory", "config": config, **result})
            print(json.dumps(rows[-1]), flush=True)

    sizes = [int(s) for s in args.parquet_rows.split(",") if s]
    if sizes:
        folder = Path(tempfile.mkdtemp(prefix="labelwise-scale-"))
        try:
            write_parquet(folder, max(sizes))
            for n in sizes:
                files = -(-n // PARQUET_FILE_ROWS)
                result = run_child(
                    sys.executable,
                    ["parquet", str(folder), str(files), str(args.chunk_size)],
                    args.cap * 4,
                )
                if "seconds" in result:
                    result["us_per_row"] = 1e6 * result["seconds"] / n
                rows.append({"pool": f"{n:,} Parquet", "config": "labelwise", **result})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| pool | config | seconds | × floor | peak RSS (MB) | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        secs = f"{row['seconds']:.2f}" if "seconds" in row else "—"
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "—"
        rss = f"{row['peak_rss_mb']:.0f}" if "peak_rss_mb" in row else "—"
        note = row.get("skipped", "")
        if "us_per_row" in row:
            note = f"{row['us_per_row']:.2f} µs/row"
        lines.append(
            f"| {row['pool']} | {row['config']} | {secs} | {ratio} | {rss} | {note} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
