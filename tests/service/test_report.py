"""The ROI report over a project whose truth is known, on SQLite and PostgreSQL.

``simulate_labeling`` runs real rounds and answers every queued item through
the queue use-cases with the true label (annotator ``ben`` errs at a known
rate). With the default policy the uncertainty-led picks (CLUE and
representative-within-margin) find the rare class at its boundary, so the loop
must be "beating" its control slice; with the random policy every pick is
random and it must not be.
"""

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score
from sqlalchemy import func, select
from typer.testing import CliRunner

from labelwise.cli import app as cli_app
from labelwise.service.report import (
    BEATING,
    VERDICTS,
    build_report,
    render_html,
    simulate_labeling,
)
from labelwise.service.report._control import (
    CurveResult,
    curve_sizes,
    paired_bootstrap,
    verdict,
    weighted_scores,
)
from labelwise.service.store.engine import read_only
from labelwise.service.store.projects import get_project
from labelwise.service.store.schema import Annotation, Item, ModelVersion, Selection

TOP_KEYS = {
    "report_version",
    "project",
    "generated_at",
    "model",
    "seed",
    "totals",
    "labels_per_week",
    "time_per_item",
    "gold",
    "model_versions",
    "control_slice",
    "coverage",
    "agreement",
    "drift",
    "stop",
    "failures",
}
SCENARIO = {"rounds": 6, "batch_size": 40, "n_pool": 1200, "n_validation": 250}


def _report(factory, name, **kwargs):
    with read_only(factory) as session:
        project = get_project(session=session, name=name)
        return build_report(session=session, project=project, repeats=3, **kwargs)


@pytest.fixture
def loop_project(session_factory):
    simulate_labeling(
        session_factory,
        name="loop",
        policy="default",
        late_pool=200,
        late_shift=1.0,
        rng=7,
        **SCENARIO,
    )
    return _report(session_factory, "loop")


def test_the_loop_beats_random_where_margin_finds_the_rare_class(
    loop_project, session_factory
):
    """One simulation per backend (they take seconds), three groups of checks."""
    report = loop_project
    check_the_verdict(report)
    check_the_counts_match_the_store(report, session_factory)
    check_the_html_is_self_contained(report)


def check_the_verdict(report):
    assert set(report) == TOP_KEYS
    control = report["control_slice"]
    assert control["verdict"] == BEATING, control["verdict_text"]
    assert control["verdict_text"].startswith("The loop is beating random so far (+")
    assert 0 < control["interval_low"] <= control["gain_points"]
    assert control["gain_points"] <= control["interval_high"]
    # 10 % of each 40-item round is the control slice; the cold first round
    # too (CLUE clusters the pool unweighted for the rest of it).
    assert control["n_control"] == report["totals"]["control_labels"]
    assert 20 <= control["n_control"] <= 6 * 4
    ks = [p["k"] for p in control["learning_curve"]]
    assert ks == sorted(ks) and ks[0] == 10 and ks[-1] == control["n_control"]
    # The loop's labels teach the rare class; control labels barely do.
    last = control["learning_curve"][-1]
    assert last["all_macro_f1"] > last["control_macro_f1"]
    # Selected (uncertain) picks are harder for the then-model than random ones.
    errors = control["model_error"]
    assert errors["selected"] > errors["control"]
    # Coverage: "rare" is rare in the pool and enriched among the labels.
    rare = next(c for c in report["coverage"] if c["label"] == "rare")
    assert rare["rare"] is True and rare["enrichment"] > 2
    # The newest import is shifted by one standard deviation in x0.
    shift = report["drift"]["score_shift"]
    assert shift["n_newest"] == 200 and shift["shifted"] is True


def check_the_counts_match_the_store(report, session_factory):
    with read_only(session_factory) as session:
        answers = session.scalar(
            select(func.count())
            .select_from(Annotation)
            .where(Annotation.source == "queue")
        )
        gold = (
            session.execute(
                select(Annotation.provenance)
                .join(Item, Item.id == Annotation.item_id)
                .where(Item.role == "gold", Annotation.source == "queue")
            )
            .scalars()
            .all()
        )
        failure_picks = session.scalar(
            select(func.count())
            .select_from(Selection)
            .where(Selection.reason == "failure")
        )
        versions = session.scalars(
            select(ModelVersion.n_labels).order_by(ModelVersion.id)
        ).all()
    weeks = report["labels_per_week"]
    assert sum(w["answers"] for w in weeks) == answers == report["totals"]["answers"]
    assert all(re.fullmatch(r"\d{4}-W\d{2}", w["week"]) for w in weeks)
    # 6 rounds, 3 days apart: the answers span several ISO weeks.
    assert len(weeks) >= 3
    wrong = sum(1 for p in gold if p.get("gold_correct") is False)
    assert report["gold"]["answers"] == len(gold) > 0
    assert report["gold"]["errors"] == wrong
    assert report["gold"]["error_rate"] == pytest.approx(wrong / len(gold), abs=1e-4)
    assert [v["n_labels"] for v in report["model_versions"]] == versions
    assert all(v["macro_f1"] is not None for v in report["model_versions"])
    times = report["time_per_item"]
    assert {r["annotator"] for r in times["by_annotator"]} == {"ana", "ben"}
    by_reason = {r["reason"]: r for r in times["by_reason"]}
    # The simulated annotators take longer on uncertain picks than random ones.
    assert (
        by_reason["uncertain"]["median_seconds"] > by_reason["random"]["median_seconds"]
    )
    assert report["stop"]["recommendation"] in {"stop", "continue"}
    assert report["stop"]["rules"]
    assert report["failures"]["items"] == report["failures"]["failures"] == 0
    assert report["failures"]["labeled"] == 0
    assert report["failures"]["selected_near_failures"] == failure_picks
    assert report["failures"]["error_driven_picks"] == failure_picks
    json.dumps(report)  # JSON-safe throughout


def check_the_html_is_self_contained(report):
    html = render_html(report)
    assert html.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html)
    assert "http" not in html.replace("http-equiv", "")
    assert "<script" not in html
    assert html.count('src="data:image/png;base64,') >= 6
    assert 'data-verdict="beating"' in html
    assert html.count("<figcaption>") == html.count("data:image/png")


def test_random_picks_do_not_beat_the_control_slice(session_factory):
    simulate_labeling(session_factory, name="rnd", policy="random", rng=7, **SCENARIO)
    report = _report(session_factory, "rnd")
    control = report["control_slice"]
    assert control["verdict"] != BEATING, control["verdict_text"]
    assert control["verdict"] in VERDICTS
    # Every pick is a control pick (the 20 seed labels were never picked).
    assert control["n_control"] == control["n_labels"] - 20
    assert control["model_error"]["n_selected"] == 0
    assert control["interval_low"] <= 0


def test_same_seed_same_report(session_factory):
    simulate_labeling(
        session_factory,
        name="twice",
        rng=3,
        rounds=3,
        batch_size=30,
        n_pool=400,
        n_validation=100,
    )
    first = _report(session_factory, "twice", seed=5)
    second = _report(session_factory, "twice", seed=5)
    first.pop("generated_at")
    second.pop("generated_at")
    assert first == second


# ------------------------------------------------------------------ pure parts


def test_curve_sizes():
    assert curve_sizes(9) == []
    assert curve_sizes(10) == [10]
    sizes = curve_sizes(80, n_points=4)
    assert sizes == [10, 20, 40, 80]
    assert curve_sizes(11, n_points=5) == [10, 11]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.integers(0, k - 1), min_size=3, max_size=30),
            st.data(),
        )
    )
)
def test_weighted_scores_match_sklearn(case):
    n_classes, truth, data = case
    n = len(truth)
    predicted = data.draw(
        st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)
    )
    weights = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    if sum(weights) == 0:
        weights[0] = 1
    y = np.asarray(truth)
    p = np.asarray(predicted)
    w = np.asarray(weights, dtype=float)
    expanded_y = np.repeat(y, weights)
    expanded_p = np.repeat(p, weights)
    f1 = weighted_scores(
        p[None, :], y, w[None, :], n_classes=n_classes, metric="macro_f1"
    )
    acc = weighted_scores(
        p[None, :], y, w[None, :], n_classes=n_classes, metric="accuracy"
    )
    assert f1[0, 0] == pytest.approx(
        f1_score(expanded_y, expanded_p, average="macro", zero_division=0)
    )
    assert acc[0, 0] == pytest.approx(accuracy_score(expanded_y, expanded_p))


def _result(control, everything, y):
    control = np.asarray(control)[None, None, :]
    everything = np.asarray(everything)[None, None, :]
    return CurveResult([10], control, everything, np.asarray(y), 2)


def test_paired_bootstrap_of_identical_arms_is_exactly_zero():
    y = np.asarray([0, 1] * 20)
    pred = np.asarray([0, 0, 1, 1] * 10)
    result = _result(pred, pred, y)
    mean, low, high = paired_bootstrap(
        result, metric="macro_f1", rng=np.random.default_rng(0)
    )
    assert mean == low == high == 0.0


def test_paired_bootstrap_sees_a_clear_gain():
    y = np.asarray([0] * 30 + [1] * 30)
    result = _result(np.zeros(60, dtype=int), y, y)
    mean, low, high = paired_bootstrap(
        result, metric="accuracy", rng=np.random.default_rng(0)
    )
    assert mean == pytest.approx(50.0)
    assert 35 < low < mean < high < 65


@pytest.mark.parametrize(
    ("n_control", "n_validation", "gain", "code", "words"),
    [
        (30, 100, (5.0, 1.0, 9.0), "beating", "is beating random so far (+5.0"),
        (30, 100, (1.0, -2.0, 4.0), "not_beating", "could be zero"),
        (30, 100, (-5.0, -9.0, -1.0), "not_beating", "better model"),
        (12, 100, None, "inconclusive", "need about 8 more"),
        (30, 5, None, "inconclusive", "need about 15 more"),
    ],
)
def test_verdict_codes_and_words(n_control, n_validation, gain, code, words):
    got, text = verdict(n_control=n_control, n_validation=n_validation, gain=gain)
    assert got == code
    assert words in text


# ------------------------------------------------------------------ the CLI


def test_cli_json_and_html(tmp_path, store_url, session_factory):
    simulate_labeling(
        session_factory,
        name="cli",
        rng=1,
        rounds=3,
        batch_size=30,
        n_pool=400,
        n_validation=100,
    )
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli_app,
        [
            "report",
            "cli",
            "--out",
            str(out),
            "--json",
            "--repeats",
            "2",
            "--db",
            store_url,
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(payload) == TOP_KEYS
    assert {
        "verdict",
        "verdict_text",
        "interval_low",
        "interval_high",
        "learning_curve",
        "model_error",
    } <= set(payload["control_slice"])
    assert payload["control_slice"]["verdict"] in VERDICTS
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_cli_needs_an_output(store_url):
    result = CliRunner().invoke(cli_app, ["report", "x", "--db", store_url])
    assert result.exit_code == 2
    assert "Expected --out FILE, --json or both" in result.output


def test_cli_unknown_project(store_url):
    result = CliRunner().invoke(
        cli_app, ["report", "nope", "--json", "--db", store_url]
    )
    assert result.exit_code != 0
    assert "nope" in result.output


# ------------------------------------------------------------------ the cache


def test_the_cache_refreshes_in_the_background_and_keys_on_new_answers(
    session_factory,
):
    import time

    from labelwise.service.report import ReportCache
    from labelwise.service.store.engine import transaction
    from labelwise.service.store.schema import Project

    simulate_labeling(
        session_factory,
        name="cached",
        rng=2,
        rounds=2,
        batch_size=20,
        n_pool=200,
        n_validation=40,
    )
    with read_only(session_factory) as session:
        project_id = session.scalar(select(Project.id).where(Project.name == "cached"))
    cache = ReportCache()
    cached, current, error = cache.latest(session_factory, project_id)
    assert (cached, current, error) == (None, False, None)
    for _ in range(600):
        cached, current, error = cache.latest(session_factory, project_id)
        if current:
            break
        time.sleep(0.1)
    assert current and error is None
    assert cached.report["project"] == "cached" and cached.plots
    # Served from the cache while nothing changes; a new answer changes the key.
    assert cache.get(session_factory, project_id) is cached
    with transaction(session_factory) as session:
        item = session.scalar(select(Item).where(Item.role == "pool").limit(1))
        session.add(
            Annotation(
                project_id=project_id,
                item_id=item.id,
                label=json.dumps("common"),
                source="review",
                provenance={},
            )
        )
    assert cache.get(session_factory, project_id) is not cached
