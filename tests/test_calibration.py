"""CalibratedModel lowers calibration error and survives a cold start; ECE is right."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from labelwise._typing import ProbabilisticModel
from labelwise.calibration import (
    CalibratedModel,
    ReliabilityBins,
    expected_calibration_error,
    reliability_bins,
)
from labelwise.exceptions import ConfigError, InvalidInputError


def _split(n_classes: int, n_train: int, seed: int = 0) -> tuple[Any, ...]:
    # Redundant, correlated features make GaussianNB overconfident.
    X, y = make_classification(
        n_samples=n_train + 2000,
        n_features=20,
        n_informative=6,
        n_redundant=10,
        n_classes=n_classes,
        n_clusters_per_class=2 if n_classes == 2 else 1,
        random_state=seed,
    )
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


# --------------------------------------------------------------- ECE and bins


def test_perfectly_calibrated_case_has_near_zero_ece():
    rng = np.random.default_rng(0)
    n = 40_000
    p1 = rng.uniform(0.0, 1.0, n)
    y = (rng.uniform(0.0, 1.0, n) < p1).astype(int)  # y ~ Bernoulli(p1)
    probas = np.column_stack([1 - p1, p1])
    assert expected_calibration_error(y, probas) < 0.015


def test_overconfident_case_has_large_ece():
    rng = np.random.default_rng(1)
    n = 5000
    y = rng.integers(0, 2, n)
    predicted = np.where(rng.uniform(size=n) < 0.6, y, 1 - y)  # 60 % right
    probas = np.where(predicted[:, None] == np.arange(2), 0.99, 0.01)
    ece = expected_calibration_error(y, probas)
    assert ece == pytest.approx(0.99 - 0.6, abs=0.03)


def test_reliability_bins_counts_sum_to_n_and_match_hand_computation():
    y = np.array([0, 0, 1, 1, 1])
    p1 = np.array([0.05, 0.45, 0.55, 0.95, 0.95])
    probas = np.column_stack([1 - p1, p1])
    bins = reliability_bins(y, probas, n_bins=10)
    assert isinstance(bins, ReliabilityBins)
    assert bins.counts.sum() == len(y)
    assert bins.edges.shape == (11,)
    assert bins.mean_confidence.shape == bins.accuracy.shape == (10,)
    # confidences 0.95, 0.55, 0.55, 0.95, 0.95 -> bins 5 (0.5-0.6] and 9 (0.9-1.0]
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 3]
    assert bins.accuracy[5] == pytest.approx(1.0)  # 0.45 -> class 0 right; 0.55 right
    assert bins.mean_confidence[9] == pytest.approx(0.95)
    assert np.isnan(bins.accuracy[0])
    expected = (2 * abs(1.0 - 0.55) + 3 * abs(1.0 - 0.95)) / 5
    assert bins.ece == pytest.approx(expected)
    assert expected_calibration_error(y, probas, n_bins=10) == pytest.approx(expected)


def test_ece_uses_classes_for_column_labels():
    y = np.array(["b", "b"])
    probas = np.array([[0.2, 0.8], [0.2, 0.8]])
    assert expected_calibration_error(y, probas, classes=["a", "b"]) == pytest.approx(
        0.2
    )
    # Columns the other way round: the top label is always wrong.
    assert expected_calibration_error(y, probas, classes=["b", "a"]) == pytest.approx(
        0.8
    )


def test_ece_integer_labels_default_to_column_positions():
    y = np.array([2, 2, 2])  # only one label seen, three columns
    probas = np.tile([0.1, 0.1, 0.8], (3, 1))
    assert expected_calibration_error(y, probas) == pytest.approx(0.2)


def test_ece_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="sum to 1"):
        expected_calibration_error([0, 1], [[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(InvalidInputError, match="one label per row"):
        expected_calibration_error([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(InvalidInputError, match=r"classes=model\.classes_"):
        expected_calibration_error(["a", "b", "c"], [[0.5, 0.5]] * 3)
    with pytest.raises(ConfigError, match="'n_bins'"):
        reliability_bins([0], [[0.5, 0.5]], n_bins=0)


# ----------------------------------------------------------- lowering ECE


@pytest.mark.parametrize(
    ("n_classes", "n_train", "method"),
    [
        (2, 600, "sigmoid"),
        (2, 1500, "isotonic"),
        (3, 600, "temperature"),
        (3, 600, "auto"),
    ],
)
def test_calibration_lowers_ece_of_overconfident_model(n_classes, n_train, method):
    X_train, y_train, X_test, y_test = _split(n_classes, n_train)
    raw = GaussianNB().fit(X_train, y_train)
    raw_ece = expected_calibration_error(y_test, raw.predict_proba(X_test))
    model = CalibratedModel(GaussianNB(), method=method, random_state=0)
    model.fit(X_train, y_train)
    ece = expected_calibration_error(y_test, model.predict_proba(X_test))
    assert raw_ece > 0.05  # the premise: GaussianNB is miscalibrated here
    assert ece < 0.6 * raw_ece
    if method == "auto":
        assert model.method_ == "temperature"
    else:
        assert model.method_ == method


@pytest.mark.parametrize(
    ("n_classes", "n", "expected"),
    [
        (2, 9, "none"),
        (2, 200, "sigmoid"),
        (3, 200, "temperature"),
        (2, 1000, "isotonic"),
    ],
)
def test_auto_method_choice(n_classes, n, expected):
    X, y = make_classification(
        n_samples=n,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=0,
    )
    model = CalibratedModel(LogisticRegression(max_iter=1000)).fit(X, y)
    assert model.method_ == expected
    assert model.predict_proba(X).shape == (n, n_classes)


def test_cv_is_capped_by_rarest_class():
    X, _ = make_classification(n_samples=40, n_features=4, random_state=0)
    y = np.array([0] * 38 + [1] * 2)
    model = CalibratedModel(
        LogisticRegression(max_iter=1000), method="sigmoid", cv=5, random_state=0
    )
    model.fit(X, y)
    assert model.n_splits_ == 2
    assert np.allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_same_seed_gives_same_probabilities():
    X_train, y_train, X_test, _ = _split(2, 300)
    base = CalibratedModel(
        DecisionTreeClassifier(max_depth=4), method="sigmoid", random_state=7
    )
    first = clone(base).fit(X_train, y_train).predict_proba(X_test)
    second = clone(base).fit(X_train, y_train).predict_proba(X_test)
    other = (
        clone(base)
        .set_params(random_state=8)
        .fit(X_train, y_train)
        .predict_proba(X_test)
    )
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)  # the seed reaches folds and the tree


# --------------------------------------------------------------- cold start


def test_one_class_batch_returns_smoothed_prior_over_all_classes():
    X = np.arange(8, dtype=float).reshape(4, 2)
    model = CalibratedModel(LogisticRegression(), classes=["neg", "neu", "pos"])
    model.fit(X, ["pos"] * 4)
    probas = model.predict_proba(np.zeros((5, 2)))
    assert model.method_ == "prior"
    assert probas.shape == (5, 3)
    np.testing.assert_allclose(probas, np.tile([1 / 7, 1 / 7, 5 / 7], (5, 1)))
    assert model.predict(np.zeros((2, 2))).tolist() == ["pos", "pos"]


def test_one_class_without_classes_gives_single_column():
    model = CalibratedModel(LogisticRegression()).fit([[0.0], [1.0]], [3, 3])
    np.testing.assert_allclose(model.predict_proba([[0.5]]), [[1.0]])


def test_unseen_classes_get_columns_and_rows_sum_to_one():
    X, y = make_classification(
        n_samples=60,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        class_sep=2.0,
        random_state=0,
    )
    labels = np.where(y == 1, "b", "d")
    model = CalibratedModel(
        LogisticRegression(max_iter=1000), classes=["a", "b", "c", "d"], random_state=0
    )
    model.fit(X, labels)
    probas = model.predict_proba(X)
    assert probas.shape == (60, 4)
    np.testing.assert_allclose(probas.sum(axis=1), 1.0)
    np.testing.assert_allclose(probas[:, [0, 2]], 1 / 64)  # 1 / (n + K)
    assert model.seen_classes_.tolist() == [False, True, False, True]
    assert set(model.predict(X)) <= {"b", "d"}
    assert (model.predict(X) == labels).mean() > 0.8


def test_tiny_data_two_per_class_works():
    X = np.array(
        [[0.0, 0.0], [0.1, 0.2], [3.0, 3.0], [3.1, 2.9], [6.0, 0.0], [6.2, 0.1]]
    )
    y = np.array([0, 0, 1, 1, 2, 2])
    for method in ("auto", "sigmoid", "isotonic", "temperature", "none"):
        model = CalibratedModel(
            LogisticRegression(max_iter=1000), method=method, classes=[0, 1, 2, 3]
        )
        probas = model.fit(X, y).predict_proba(X)
        assert probas.shape == (6, 4)
        assert np.all(probas >= 0)
        np.testing.assert_allclose(probas.sum(axis=1), 1.0)


def test_singleton_class_falls_back_to_plain_estimator():
    X = np.array([[0.0], [0.2], [0.4], [5.0]])
    model = CalibratedModel(
        LogisticRegression(max_iter=1000), method="isotonic", classes=[0, 1]
    )
    model.fit(X, [0, 0, 0, 1])
    assert model.method_ == "none"
    assert model.predict([[5.0]]).tolist() == [1]


# ------------------------------------------------------------ input forms


def test_accepts_any_probabilistic_model_and_dataframe():
    X_train, y_train, X_test, y_test = _split(2, 300)
    frame = pd.DataFrame(X_train, columns=[f"f{i}" for i in range(20)])
    model = CalibratedModel(GaussianNB(), random_state=0).fit(frame, y_train)
    assert isinstance(model, ProbabilisticModel)
    test_frame = pd.DataFrame(X_test, columns=frame.columns)
    accuracy = (model.predict(test_frame) == y_test).mean()
    assert accuracy > 0.8


def test_labels_must_belong_to_classes():
    with pytest.raises(InvalidInputError, match=r"one of the classes \['a', 'b'\]"):
        CalibratedModel(GaussianNB(), classes=["a", "b"]).fit(
            [[0.0], [1.0]], ["a", "z"]
        )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"method": "platt"}, "'method' parameter of CalibratedModel"),
        ({"cv": 1}, "'cv' parameter of CalibratedModel"),
        ({"classes": ["a", "a"]}, "each label once"),
        ({"estimator": "logistic"}, "'estimator' parameter"),
    ],
)
def test_bad_params_are_rejected_in_fit(params, match):
    model = CalibratedModel(**{"estimator": GaussianNB(), **params})  # no error yet
    with pytest.raises(ConfigError, match=match):
        model.fit([[0.0], [1.0]], ["a", "b"])


def test_mismatched_lengths_are_rejected():
    with pytest.raises(InvalidInputError, match="same number of items"):
        CalibratedModel(GaussianNB()).fit([[0.0], [1.0], [2.0]], [0, 1])


def test_get_params_round_trip():
    model = CalibratedModel(GaussianNB(), method="sigmoid", cv=4, classes=[0, 1])
    params = model.get_params(deep=False)
    assert params["method"] == "sigmoid" and params["cv"] == 4
    assert clone(model).get_params(deep=False)["classes"] == [0, 1]
