"""Stopping rules fire exactly when they should, and say why with figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from labelwise.exceptions import ConfigError, InvalidInputError, UnknownNameError
from labelwise.stopping import (
    LabelBudget,
    MetricPlateau,
    StabilizingPredictions,
    StopDecision,
    StoppingCriteria,
    get_stopping_rule,
    get_stopping_rule_names,
)

# ----------------------------------------------------------------- StopDecision


def test_stop_decision_is_frozen():
    decision = StopDecision(stop=True, rule="label_budget", reason="done")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.stop = False  # type: ignore[misc]


# ------------------------------------------------------------- LabelBudget


def test_label_budget_fires_at_budget_and_not_before():
    rule = LabelBudget(100)
    below = rule.update(n_labels=99)
    at = rule.update(n_labels=100)
    above = rule.update(n_labels=150)
    assert (below.stop, at.stop, above.stop) == (False, True, True)
    assert at.rule == "label_budget"
    assert "100 labels reaches the budget of 100" in at.reason
    assert "99 labels is below the budget of 100" in below.reason


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_label_budget_rejects_bad_max_labels(bad):
    with pytest.raises(ConfigError, match="'max_labels' parameter of LabelBudget"):
        LabelBudget(bad)


def test_negative_n_labels_is_rejected():
    with pytest.raises(ConfigError, match="'n_labels'"):
        LabelBudget(10).update(n_labels=-1)


# ------------------------------------------------------------ MetricPlateau


def test_metric_plateau_fires_after_patience_updates_without_gain():
    rule = MetricPlateau(patience=3, min_delta=0.01)
    scores = [0.60, 0.70, 0.705, 0.709, 0.70]  # no gain > 0.01 after 0.70
    decisions = [
        rule.update(n_labels=100 * (i + 1), validation_score=s)
        for i, s in enumerate(scores)
    ]
    assert [d.stop for d in decisions] == [False, False, False, False, True]
    last = decisions[-1].reason
    assert "0.7000" in last  # the score and the best
    assert "200 labels" in last  # where the best was reached
    assert "3 of 3" in last
    assert rule.best_score_ == pytest.approx(0.70)


def test_metric_plateau_improvement_resets_the_count():
    rule = MetricPlateau(patience=2, min_delta=0.0)
    stops = [
        rule.update(n_labels=n, validation_score=s).stop
        for n, s in [(10, 0.5), (20, 0.5), (30, 0.6), (40, 0.6), (50, 0.6)]
    ]
    assert stops == [False, False, False, False, True]
    assert rule.best_n_labels_ == 30


def test_metric_plateau_min_delta_is_strict():
    rule = MetricPlateau(patience=1, min_delta=0.05)
    rule.update(n_labels=10, validation_score=0.50)
    decision = rule.update(n_labels=20, validation_score=0.55)  # gain == min_delta
    assert decision.stop
    assert "0.5500" in decision.reason and "0.05" in decision.reason


def test_metric_plateau_reset_forgets_best():
    rule = MetricPlateau(patience=1)
    rule.update(n_labels=10, validation_score=0.9)
    rule.reset()
    assert rule.best_score_ is None
    assert not rule.update(n_labels=20, validation_score=0.5).stop


def test_metric_plateau_needs_a_score():
    with pytest.raises(InvalidInputError, match="validation_score"):
        MetricPlateau().update(n_labels=10)


@pytest.mark.parametrize(
    ("params", "match"),
    [({"patience": 0}, "'patience'"), ({"min_delta": -0.1}, "'min_delta'")],
)
def test_metric_plateau_rejects_bad_params(params, match):
    with pytest.raises(ConfigError, match=match):
        MetricPlateau(**params)


# --------------------------------------------------- StabilizingPredictions


def test_stabilizing_predictions_fires_on_mean_kappa_of_window():
    rule = StabilizingPredictions(window=2, threshold=0.99)
    a = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    b = np.array([0, 1, 0, 1, 1, 0, 1, 1])  # one disagreement with a
    first = rule.update(n_labels=10, stop_set_predictions=a)
    second = rule.update(n_labels=20, stop_set_predictions=b)
    third = rule.update(n_labels=30, stop_set_predictions=b)  # kappas: k(a,b), 1.0
    fourth = rule.update(n_labels=40, stop_set_predictions=b)  # kappas: 1.0, 1.0
    assert [d.stop for d in (first, second, third, fourth)] == [
        False,
        False,
        False,
        True,
    ]
    assert "First round" in first.reason
    assert "1 of the 2 kappas" in second.reason
    assert rule.kappas_[0] == pytest.approx(0.75)  # sklearn's kappa for (a, b)
    assert "0.8750" in third.reason and "is below the threshold 0.99" in third.reason
    assert "1.0000" in fourth.reason and "reaches the threshold 0.99" in fourth.reason
    assert fourth.rule == "stabilizing_predictions"


def test_stabilizing_predictions_constant_predictions_count_as_agreement():
    rule = StabilizingPredictions(window=1, threshold=0.99)
    rule.update(n_labels=5, stop_set_predictions=np.zeros(6, dtype=int))
    same = rule.update(n_labels=10, stop_set_predictions=np.zeros(6, dtype=int))
    assert same.stop
    assert rule.kappas_ == [1.0]
    flipped = rule.update(n_labels=15, stop_set_predictions=np.ones(6, dtype=int))
    assert not flipped.stop
    assert rule.kappas_[-1] == 0.0
    assert np.isfinite(rule.kappas_).all()


def test_stabilizing_predictions_works_with_string_labels():
    rule = StabilizingPredictions(window=1, threshold=0.5)
    rule.update(n_labels=1, stop_set_predictions=["ham", "spam", "ham"])
    assert rule.update(n_labels=2, stop_set_predictions=["ham", "spam", "ham"]).stop


def test_stabilizing_predictions_reset_and_errors():
    rule = StabilizingPredictions(window=1)
    rule.update(n_labels=1, stop_set_predictions=[0, 1, 1])
    with pytest.raises(InvalidInputError, match="same 3 stop-set items"):
        rule.update(n_labels=2, stop_set_predictions=[0, 1])
    rule.reset()
    assert rule.kappas_ == []
    assert not rule.update(n_labels=3, stop_set_predictions=[0, 1]).stop
    with pytest.raises(InvalidInputError, match="stop_set_predictions"):
        rule.update(n_labels=4)
    with pytest.raises(InvalidInputError, match="1-D"):
        rule.update(n_labels=4, stop_set_predictions=[[0, 1]])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"window": 0}, "'window' parameter of StabilizingPredictions"),
        ({"threshold": 0.0}, r"'threshold'.*\(0, 1\]"),
        ({"threshold": 1.5}, "'threshold'"),
    ],
)
def test_stabilizing_predictions_rejects_bad_params(params, match):
    with pytest.raises(ConfigError, match=match):
        StabilizingPredictions(**params)


# ---------------------------------------------------------- StoppingCriteria


def test_criteria_returns_first_rule_that_fires_and_updates_all():
    plateau = MetricPlateau(patience=1, min_delta=0.0)
    budget = LabelBudget(30)
    criteria = StoppingCriteria([plateau, budget])
    first = criteria.update(n_labels=10, validation_score=0.5)
    assert not first.stop
    assert first.rule == "stopping_criteria"
    assert "[metric_plateau]" in first.reason and "[label_budget]" in first.reason
    second = criteria.update(n_labels=30, validation_score=0.7)
    assert second.stop and second.rule == "label_budget"
    assert plateau.best_score_ == pytest.approx(0.7)  # updated although budget fired
    third = criteria.update(n_labels=40, validation_score=0.6)
    assert third.stop and third.rule == "metric_plateau"  # order decides
    criteria.reset()
    assert plateau.best_score_ is None


def test_criteria_rejects_empty_and_non_rules():
    with pytest.raises(ConfigError, match="at least one"):
        StoppingCriteria([])
    with pytest.raises(ConfigError, match="StoppingRule"):
        StoppingCriteria([object()])  # type: ignore[list-item]


# ------------------------------------------------------------------ registry


def test_registry_names_and_lookup():
    assert get_stopping_rule_names() == [
        "label_budget",
        "metric_plateau",
        "stabilizing_predictions",
    ]
    rule = get_stopping_rule("label_budget", max_labels=5)
    assert isinstance(rule, LabelBudget) and rule.max_labels == 5
    assert isinstance(get_stopping_rule("metric_plateau"), MetricPlateau)
    fresh = get_stopping_rule("stabilizing_predictions", window=2)
    assert isinstance(fresh, StabilizingPredictions) and fresh.window == 2


def test_unknown_rule_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        get_stopping_rule("label_budgett")
    message = str(info.value)
    assert "'label_budgett' is not a stopping rule" in message
    for name in get_stopping_rule_names():
        assert name in message
    assert "get_stopping_rule_names()" in message


def test_registry_validates_params():
    with pytest.raises(ConfigError, match="takes the parameters"):
        get_stopping_rule("label_budget", budget=5)
    with pytest.raises(ConfigError, match=r"'max_labels'.*Got -1"):
        get_stopping_rule("label_budget", max_labels=-1)
