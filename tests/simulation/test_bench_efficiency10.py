"""The issue #10 benchmark code in bench/: subsampling, resumable runs, the report."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from labelwise.simulation._loop import compute_geometry, prepare_data
from labelwise.simulation._suite import default_cases

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import efficiency10  # noqa: E402
import report10  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def test_stratified_subsample_keeps_class_shares_and_is_deterministic():
    y = np.array(["a"] * 900 + ["b"] * 100)
    rows = efficiency10._stratified(y, 200, np.random.default_rng(0))
    again = efficiency10._stratified(y, 200, np.random.default_rng(0))
    assert np.array_equal(rows, again)
    assert rows.size == 200
    assert np.unique(rows).size == rows.size
    assert (y[rows] == "b").sum() == 20
    small = efficiency10._stratified(y[:50], 200, np.random.default_rng(0))
    assert np.array_equal(small, np.arange(50))


def test_run_case_is_resumable_and_paired(tmp_path):
    case = efficiency10.Case("iris", "sklearn:iris", 30, 6, 10, 6)
    dataset = efficiency10.load_case(case, DATASETS)
    prepared = prepare_data(dataset)
    geometry = compute_geometry(dataset, seed=0)
    kwargs = {
        "noise": 0.0,
        "batch": 6,
        "policies": ["default", "random"],
        "jobs": 1,
        "out_dir": tmp_path,
    }
    efficiency10.run_case(
        case, dataset, prepared, geometry, 0.9, seeds=[0, 1], **kwargs
    )
    path = tmp_path / "iris@b6.json"
    first = json.loads(path.read_text())
    assert sorted((r["policy"], r["seed"]) for r in first["runs"]) == [
        ("default", 0),
        ("default", 1),
        ("random", 0),
        ("random", 1),
    ]
    # Same seed, same initial set: the first curve point is shared by every policy.
    by_seed = {}
    for run in first["runs"]:
        by_seed.setdefault(run["seed"], set()).add(run["accuracy"][0])
    assert all(len(points) == 1 for points in by_seed.values())
    # A second call with one more seed runs only that seed's two runs.
    efficiency10.run_case(
        case, dataset, prepared, geometry, 0.9, seeds=[0, 1, 2], **kwargs
    )
    second = json.loads(path.read_text())
    assert len(second["runs"]) == 6
    assert second["runs"][:4] == first["runs"]


def _fake_case(path, gain):
    rng = np.random.default_rng(1)
    runs = []
    for seed in range(8):
        base = 0.7 + rng.normal(0, 0.01)
        for policy, shift in (("default", gain), ("random", 0.0), ("margin", 0.005)):
            curve = [base - 0.2 + shift, base + shift, base + 0.1 + shift]
            runs.append(
                {
                    "policy": policy,
                    "seed": seed,
                    "labels": [10, 20, 30],
                    "accuracy": curve,
                    "aulc": float(np.mean(curve)),
                    "seconds": 1.0,
                    "label_errors": 0,
                }
            )
    record = {
        "case": path.stem,
        "dataset": "fake",
        "noise": 0.0,
        "n_pool": 100,
        "n_classes": 2,
        "config": {"budget": 30, "batch_size": 10},
        "full_data_score": 0.84,
        "runs": runs,
    }
    path.write_text(json.dumps(record))


def test_report_statistics_table_and_plots(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    _fake_case(runs / "better@b10.json", 0.02)
    _fake_case(runs / "worse@b10.json", -0.02)
    report10.main(runs, tmp_path)
    rows = {r["case"]: r for r in json.loads((tmp_path / "summary.json").read_text())}
    better, worse = rows["better@b10"], rows["worse@b10"]
    assert better["vs_random"]["delta"] == pytest.approx(0.02)
    assert better["vs_random"]["p_wilcoxon"] < 0.01
    assert worse["vs_random"]["delta"] == pytest.approx(-0.02)
    assert worse["best_other"] == "margin"
    # Target 0.95 * 0.84 = 0.798: random's mean curve ends near 0.80 (reached at
    # 30 labels), the worse default's near 0.78 (never reached).
    assert better["policies"]["random"]["labels_to_95"] == 30
    assert worse["policies"]["default"]["labels_to_95"] is None
    text = (tmp_path / "results.md").read_text()
    assert "Default significantly worse than random (p < 0.05): ['worse@b10']" in text
    for png in ("summary.png", "curves/better@b10.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_wilcoxon_is_one_when_nothing_differs():
    a = np.array([0.5, 0.6, 0.7])
    assert report10.wilcoxon_p(a, a.copy()) == 1.0


def test_suite_covers_the_multiannotator_and_small_sklearn_sets():
    cases = default_cases(DATASETS, ["hs_brexit", "md_agreement", "wine", "iris"])
    assert [c.name for c in cases] == ["hs_brexit", "md_agreement", "wine", "iris"]
    assert cases[0].source.endswith("hs_brexit_multiannotator.parquet")


def test_suite_cases_match_the_issue10_grid():
    names = [case.name for case in efficiency10.CASES]
    for grid, suite in zip(
        efficiency10.CASES, default_cases(DATASETS, names), strict=True
    ):
        config = suite.config
        assert (config.budget, config.batch_size, suite.alt_batch, config.initial) == (
            grid.budget,
            grid.batch,
            grid.alt_batch,
            grid.initial,
        ), grid.name
        assert Path(suite.source).name == Path(grid.source).name


def test_skactiveml_wrappers_pick_exactly_one_batch():
    pytest.importorskip("skactiveml")
    import compare_strategies

    from labelwise.strategies import ScoringContext, get_strategy

    compare_strategies.register()
    rng = np.random.default_rng(0)
    probas = rng.dirichlet(np.ones(3), size=40)
    context = ScoringContext(
        probas=probas, X=rng.normal(size=(40, 4)), X_labeled=rng.normal(size=(5, 4))
    )
    for name in compare_strategies.SKACTIVEML_POLICIES:
        scores = get_strategy(name).score(context, batch_size=7, rng=0)
        assert np.isfinite(scores).sum() == 7
