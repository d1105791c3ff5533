"""Issue #10: the default policy against random, library strategies and scikit-activeml.

Runs every dataset of ``../shared/datasets`` that has features or text, scikit-learn's
built-in sets, and noisy-oracle variants, with the same model (the library's default
calibrated model for the data kind, its unsupervised preprocessing fit once per
dataset), the same splits, the same initial random sets and the same seeds for
every policy.

Resumable and incremental: one JSON per case (dataset x noise x batch size) in
``--out``; a finished (policy, seed) run is never run again, so an interrupted run
continues where it stopped. ``bench/report10.py`` turns the JSONs into the table and
the plots.

Usage (in the benchmark's own environment, ``bench/setup-compare``)::

    nice -n 19 bench/.venv-compare/bin/python bench/efficiency10.py --seeds 20 --jobs 2
    nice -n 19 bench/.venv-compare/bin/python bench/efficiency10.py \
        --cases trec,digits --noise 0,0.1,0.3 --batches main,alt --seeds 20 --jobs 2

Without scikit-activeml installed the ``skal_*`` policies are skipped (and said so).
"""

# ruff: noqa: E402
from __future__ import annotations

import os

# One BLAS/OpenMP thread per process: on a shared machine OpenBLAS threads spin
# and made one text run 8x slower (208 s CPU instead of 25 s, issue #10 notes).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import hashlib
import json
import multiprocessing as mp
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.data import Dataset, load_dataset, take_rows
from labelwise.metrics import aulc
from labelwise.policy import BatchPolicy, MixComponent, get_policy
from labelwise.simulation._benchmark import full_data_score
from labelwise.simulation._loop import (
    PreparedData,
    SimulationConfig,
    compute_geometry,
    prepare_data,
    run_simulation,
)
from labelwise.simulation._suite import _CASES as SUITE_CASES

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "efficiency10" / "runs"

#: Largest pool and test set per dataset (stratified subsamples, fixed seed 0).
POOL_MAX = 3000
TEST_MAX = 2000


@dataclass(frozen=True)
class Case:
    """One dataset with its budget, batch sizes and initial set."""

    name: str
    source: str
    budget: int
    batch: int
    alt_batch: int
    initial: int = 20


#: The datasets: every shared file with features or text, plus scikit-learn sets,
#: with the budgets, batch sizes and initial sets of `labelwise bench efficiency`
#: (one table: labelwise/simulation/_suite.py). This grid calls mnist_test10k "mnist".
CASES = [
    Case(
        "mnist" if name == "mnist_test10k" else name,
        source,
        config.budget,
        config.batch_size,
        alt_batch,
        config.initial,
    )
    for name, (source, config, alt_batch) in SUITE_CASES.items()
]
CASE_BY_NAME = {case.name: case for case in CASES}


#: The previous defaults and the candidates compared with them: name ->
#: (random control share, components as (reason, strategy, share)).
CANDIDATES: dict[str, tuple[float, tuple[tuple[str, str, float], ...]]] = {
    "default_issue10": (
        0.1,
        (
            ("uncertain", "representative", 0.6),
            ("diverse", "kcenter", 0.2),
            ("failure", "error_driven", 0.1),
        ),
    ),
    "cand_clue": (
        0.1,
        (("uncertain", "weighted_clusters", 0.8), ("failure", "error_driven", 0.1)),
    ),
    "default_issue2": (
        0.1,
        (
            ("uncertain", "margin", 0.6),
            ("diverse", "kcenter", 0.2),
            ("failure", "error_driven", 0.1),
        ),
    ),
    "cand_typical": (
        0.2,
        (
            ("representative", "density_weighted", 0.4),
            ("uncertain", "margin", 0.3),
            ("failure", "error_driven", 0.1),
        ),
    ),
    "cand_control": (
        0.2,
        (
            ("uncertain", "margin", 0.5),
            ("diverse", "kcenter", 0.2),
            ("failure", "error_driven", 0.1),
        ),
    ),
}


def candidate_policies() -> dict[str, BatchPolicy]:
    """The previous defaults and the candidates they were compared with.

    ``default_issue2`` is issue #2's default (60 % top-k margin);
    ``default_issue10`` the representative mix that replaced it (run as
    ``cand_repr`` before it became the default). ``cand_typical`` swaps
    k-center (which seeks outliers) for information density (uncertainty x
    k-NN density: typical items, the cold-start remedy of TypiClust, Hacohen et
    al. 2022); ``cand_control`` doubles the random control slice;
    ``cand_clue`` (session 3) gives 80 % to uncertainty-weighted clustering
    (CLUE) and drops k-center. ``cand_blend`` split those 80 % between CLUE and
    representative and became today's default. bench/migrate10.py renamed the
    runs at each switch.
    """
    return {
        name: BatchPolicy(
            components=tuple(MixComponent(*part) for part in parts),
            random_fraction=random_fraction,
            name=name,
        )
        for name, (random_fraction, parts) in CANDIDATES.items()
    }


#: Policies compared, in table order (``default`` first, ``random`` the baseline).
LIBRARY_POLICIES = [
    "default",
    "random",
    "margin",
    "entropy",
    "confidence_buckets",
    "vote_entropy",
    "representative",
]


def skactiveml_available() -> bool:
    """True when scikit-activeml is importable (the bench/.venv-compare venv)."""
    try:
        import skactiveml  # noqa: F401
    except ImportError:
        return False
    return True


def all_policies(with_skal: bool) -> list[str]:
    names = list(LIBRARY_POLICIES)
    if with_skal:
        from compare_strategies import SKACTIVEML_POLICIES

        names += list(SKACTIVEML_POLICIES)
    return names


def build_policy(name: str) -> BatchPolicy:
    candidates = candidate_policies()
    if name in candidates:
        return candidates[name]
    return get_policy(name)


def _stratified(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a stratified subsample of ``size`` rows (all when smaller)."""
    if y.shape[0] <= size:
        return np.arange(y.shape[0])
    classes, inverse = np.unique(y, return_inverse=True)
    keep: list[np.ndarray] = []
    for k in range(classes.size):
        rows = np.flatnonzero(inverse == k)
        share = max(1, round(size * rows.size / y.shape[0]))
        keep.append(rng.choice(rows, size=min(share, rows.size), replace=False))
    return np.sort(np.concatenate(keep))


def load_case(case: Case, datasets_dir: Path) -> Dataset:
    """The dataset with its pool and test set subsampled (stratified, seed 0)."""
    source = (
        case.source
        if case.source.startswith("sklearn:")
        else str(datasets_dir / case.source)
    )
    dataset = load_dataset(source)
    rng = np.random.default_rng(0)
    train = _stratified(dataset.y_train, POOL_MAX, rng)
    test = _stratified(dataset.y_test, TEST_MAX, rng)
    X_train = take_rows(dataset.X_train, train)
    X_test = take_rows(dataset.X_test, test)
    if hasattr(X_train, "reset_index"):
        X_train = X_train.reset_index(drop=True)
        X_test = X_test.reset_index(drop=True)
    return replace(
        dataset,
        name=case.name,
        X_train=X_train,
        y_train=dataset.y_train[train],
        X_test=X_test,
        y_test=dataset.y_test[test],
    )


def case_key(case: Case, noise: float, batch: int) -> str:
    suffix = f"+noise{round(noise * 100)}" if noise else ""
    return f"{case.name}{suffix}@b{batch}"


# --------------------------------------------------------------------- workers
_STATE: dict[str, Any] = {}


def _run_task(task: tuple[str, int]) -> dict[str, Any]:
    policy_name, seed = task
    start = time.perf_counter()
    history = run_simulation(
        _STATE["dataset"],
        build_policy(policy_name),
        config=_STATE["config"],
        seed=seed,
        geometry=_STATE["geometry"],
        prepared=_STATE["prepared"],
        policy_label=policy_name,
    )
    curve = history.curve("accuracy")
    return {
        "policy": policy_name,
        "seed": seed,
        "labels": list(history.labels),
        "accuracy": [float(v) for v in curve],
        "macro_f1": [float(v) for v in history.curve("macro_f1")],
        "aulc": aulc(curve),
        "label_errors": history.label_errors,
        "reasons": history.reasons,
        "seconds": time.perf_counter() - start,
    }


def _config_id(config: SimulationConfig, n_train: int, n_test: int) -> str:
    text = json.dumps([config.to_dict(), n_train, n_test], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_case(
    case: Case,
    dataset: Dataset,
    prepared: PreparedData,
    geometry: np.ndarray,
    reference: float,
    *,
    noise: float,
    batch: int,
    policies: list[str],
    seeds: list[int],
    jobs: int,
    out_dir: Path,
) -> None:
    config = SimulationConfig(
        budget=case.budget, batch_size=batch, initial=case.initial, noise=noise
    )
    key = case_key(case, noise, batch)
    path = out_dir / f"{key}.json"
    cid = _config_id(config, dataset.n_train, len(dataset.y_test))
    record: dict[str, Any] = {
        "case": key,
        "dataset": case.name,
        "kind": dataset.kind,
        "n_classes": len(dataset.classes),
        "n_pool": dataset.n_train,
        "n_test": len(dataset.y_test),
        "noise": noise,
        "config": config.to_dict(),
        "config_id": cid,
        "full_data_score": reference,
        # "default" is the blend default (see bench/migrate10.py).
        "default_is": "blend",
        "runs": [],
    }
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("config_id") == cid and old.get("default_is") == "blend":
            record["runs"] = old["runs"]
    done = {(r["policy"], r["seed"]) for r in record["runs"]}
    # Seed-major order: a partial file holds whole seeds (every policy), so the
    # report can use it.
    tasks = [(p, s) for s in seeds for p in policies if (p, s) not in done]
    if not tasks:
        print(f"{key}: complete", flush=True)
        return
    _STATE.update(dataset=dataset, prepared=prepared, geometry=geometry, config=config)
    start = time.perf_counter()
    print(f"{key}: {len(tasks)} runs to do", flush=True)

    def save(results: Iterable[dict[str, Any]]) -> None:
        for i, result in enumerate(results, 1):
            record["runs"].append(result)
            if i % 10 == 0 or i == len(tasks):
                path.write_text(json.dumps(record) + "\n")

    if jobs == 1:
        # In-process: forking a process that holds threads (a test run) can
        # deadlock the child on a lock some thread held at the fork.
        save(map(_run_task, tasks))
    else:
        with mp.get_context("fork").Pool(jobs) as pool:
            save(pool.imap_unordered(_run_task, tasks))
    print(f"{key}: done in {time.perf_counter() - start:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASE_BY_NAME))
    parser.add_argument("--policies", default=None, help="default: all")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--noise", default="0")
    parser.add_argument(
        "--batches", default="main", help="main, alt or main,alt (per-case sizes)"
    )
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="also run the candidate defaults (candidate_policies())",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--datasets-dir", type=Path, default=HERE.parent.parent / "shared" / "datasets"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    with_skal = skactiveml_available()
    if with_skal:
        from compare_strategies import register

        register()
    else:
        print(
            "scikit-activeml is not installed: skal_* policies skipped "
            "(run bench/setup-compare)",
            file=sys.stderr,
        )
    policies = args.policies.split(",") if args.policies else all_policies(with_skal)
    if args.candidates:
        policies += [p for p in candidate_policies() if p not in policies]
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    rates = [float(r) for r in args.noise.split(",")]
    for name in args.cases.split(","):
        case = CASE_BY_NAME[name]
        dataset = load_case(case, args.datasets_dir)
        prepared = prepare_data(dataset)
        geometry = compute_geometry(dataset, seed=0)
        config = SimulationConfig(budget=case.budget, initial=case.initial)
        reference = full_data_score(dataset, config, prepared=prepared)
        for which in args.batches.split(","):
            batch = case.batch if which == "main" else case.alt_batch
            for noise in rates:
                run_case(
                    case,
                    dataset,
                    prepared,
                    geometry,
                    reference,
                    noise=noise,
                    batch=batch,
                    policies=policies,
                    seeds=seeds,
                    jobs=args.jobs,
                    out_dir=args.out,
                )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
