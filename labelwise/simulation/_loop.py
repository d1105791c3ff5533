"""Replay the active-learning loop on a labeled dataset."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise._typing import FloatArray, IndexArray
from labelwise._validation import check_in_options, check_int, check_interval
from labelwise.data import Dataset, take_rows
from labelwise.metrics import get_metric_names, score_predictions
from labelwise.policy import BatchPolicy, build_batch
from labelwise.simulation._oracle import NoisyOracle, Oracle
from labelwise.strategies import ScoringContext

__all__ = [
    "History",
    "PreparedData",
    "SimulationConfig",
    "prepare_data",
    "run_simulation",
]

_GEOMETRY_FIELDS = {"X", "X_labeled", "X_failures"}
_MODEL_FIELDS = {"probas", "committee_probas"}


@dataclass(frozen=True)
class SimulationConfig:
    """How a simulated loop runs.

    Parameters
    ----------
    budget : int, default=300
        Total labels, the initial set included.
    batch_size : int, default=20
        Labels asked per round.
    initial : int, default=20
        Labels drawn uniformly at random before the first model.
    noise : float in [0, 1), default=0
        Probability that the oracle answers a wrong class.
    metric : {"accuracy", "macro_f1"}, default="accuracy"
        The metric of the learning curve, AULC and labels-to-target.
    model : str, optional
        A default model name (``labelwise.models.get_model_names()``); by
        default the text or tabular logistic model, by the data kind.
    committee_size : int, default=4
        Bootstrap committee members, when a policy needs a committee.
    """

    budget: int = 300
    batch_size: int = 20
    initial: int = 20
    noise: float = 0.0
    metric: str = "accuracy"
    model: str | None = None
    committee_size: int = 4

    def __post_init__(self) -> None:
        owner = "SimulationConfig"
        check_int(self.initial, param="initial", owner=owner, low=1)
        check_int(self.budget, param="budget", owner=owner, low=self.initial)
        check_int(self.batch_size, param="batch_size", owner=owner, low=1)
        check_interval(
            self.noise, param="noise", owner=owner, low=0, high=1, closed="left"
        )
        check_in_options(
            self.metric, param="metric", owner=owner, options=get_metric_names()
        )
        check_int(self.committee_size, param="committee_size", owner=owner, low=2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "budget": self.budget,
            "batch_size": self.batch_size,
            "initial": self.initial,
            "noise": self.noise,
            "metric": self.metric,
            "model": self.model,
            "committee_size": self.committee_size,
        }


@dataclass(frozen=True)
class History:
    """What one simulated run recorded, one entry per curve point.

    ``scores[metric][i]`` is the test score of the model trained on
    ``labels[i]`` labels; ``train_seconds[i]`` the time to train it and
    ``select_seconds[i]`` the time to score the pool and build the next batch
    (0 after the last point). ``positions`` lists the pool positions labeled,
    in the order they were bought (the initial set first).
    """

    policy: str
    policy_version: str
    seed: int
    labels: tuple[int, ...]
    scores: dict[str, tuple[float, ...]]
    train_seconds: tuple[float, ...]
    select_seconds: tuple[float, ...]
    reasons: dict[str, int] = field(default_factory=dict)
    label_errors: int = 0
    positions: tuple[int, ...] = ()

    def curve(self, metric: str = "accuracy") -> FloatArray:
        """The learning curve for ``metric``."""
        return np.asarray(self.scores[metric], dtype=np.float64)


def default_model_name(dataset: Dataset, name: str | None) -> str:
    """The model to use: ``name``, or the logistic model for the data kind."""
    if name is not None:
        return name
    return "text_logistic" if dataset.kind == "text" else "tabular_logistic"


def make_dataset_model(dataset: Dataset, name: str | None, seed: int) -> Any:
    """A fresh, calibrated default model for ``dataset``."""
    from labelwise.models import get_model

    return get_model(
        default_model_name(dataset, name),
        classes=list(dataset.classes),
        random_state=seed,
    )


@dataclass(frozen=True, eq=False)
class PreparedData:
    """A dataset with the model's unsupervised preprocessing applied once.

    The default models are pipelines: preprocessing (TF-IDF, scaling and
    one-hot encoding, sentence embeddings) then a classifier. The
    preprocessing reads no label, so a simulation fits it once on the whole
    pool, as pool-based benchmarks do, and every round only refits the
    calibrated classifier (``head``) on the transformed features.
    """

    dataset: Dataset
    head: Any

    def new_model(self, seed: int) -> Any:
        """A fresh, unfitted copy of the head, seeded with ``seed``."""
        from sklearn.base import clone

        model = clone(self.head)
        if "random_state" in model.get_params(deep=False):
            model.set_params(random_state=seed)
        return model


def prepare_data(dataset: Dataset, model_name: str | None = None) -> PreparedData:
    """Fit the default model's preprocessing on the pool once (no labels read)."""
    from dataclasses import replace

    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    model = make_dataset_model(dataset, model_name, 0)
    pipeline = getattr(model, "estimator", None)
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        return PreparedData(dataset=dataset, head=model)
    prefix = Pipeline(pipeline.steps[:-1])
    X_pool = prefix.fit_transform(dataset.X_train)
    X_test = prefix.transform(dataset.X_test)
    head = clone(model).set_params(estimator=clone(pipeline.steps[-1][1]))
    transformed = replace(dataset, X_train=X_pool, X_test=X_test)
    return PreparedData(dataset=transformed, head=head)


def make_oracle(dataset: Dataset, noise: float, seed: int) -> Oracle:
    """The oracle of a seed: the same answers for every policy run on that seed."""
    if noise == 0:
        return Oracle(dataset.y_train)
    rng = np.random.default_rng([seed, 7])
    return NoisyOracle(dataset.y_train, dataset.classes, noise, rng)


def initial_positions(dataset: Dataset, initial: int, seed: int) -> IndexArray:
    """The seed's initial labeled set, shared by every policy."""
    rng = np.random.default_rng([seed, 3])
    size = min(initial, dataset.n_train)
    return np.sort(rng.choice(dataset.n_train, size=size, replace=False)).astype(
        np.intp
    )


def run_simulation(
    dataset: Dataset,
    policy: BatchPolicy,
    *,
    config: SimulationConfig,
    seed: int,
    geometry: FloatArray | None = None,
    prepared: PreparedData | None = None,
    policy_label: str | None = None,
) -> History:
    """Replay the loop: train, score the pool, build a batch, ask the oracle.

    Parameters
    ----------
    dataset : Dataset
        Pool (train split) with hidden labels, and the test split.
    policy : BatchPolicy
        Builds every batch.
    config : SimulationConfig
        Budget, batch size, initial set, noise, metric, model.
    seed : int
        Fixes the initial set and the oracle's noise (shared by every policy on
        this seed) and the policy's own randomness.
    geometry : ndarray of shape (n_train, d), optional
        Dense features of the pool for diversity/density strategies
        (``labelwise.models.make_featurizer``); computed here when needed and
        not given.
    prepared : PreparedData, optional
        The dataset with its preprocessing fitted once (:func:`prepare_data`);
        computed here when not given.
    policy_label : str, optional
        The name recorded in the history (default: ``policy.name``).

    Returns
    -------
    History
    """
    required = policy.required_inputs()
    needs_geometry = bool(required & _GEOMETRY_FIELDS)
    if needs_geometry and geometry is None:
        geometry = compute_geometry(dataset, seed=seed)
    if prepared is None:
        prepared = prepare_data(dataset, config.model)
    dataset = prepared.dataset
    oracle = make_oracle(dataset, config.noise, seed)
    select_rng = np.random.default_rng([seed, 11])
    labeled = initial_positions(dataset, config.initial, seed)
    is_labeled = np.zeros(dataset.n_train, dtype=bool)
    is_labeled[labeled] = True
    metrics = get_metric_names()
    labels: list[int] = []
    scores: dict[str, list[float]] = {m: [] for m in metrics}
    train_seconds: list[float] = []
    select_seconds: list[float] = []
    reasons: Counter[str] = Counter()
    while True:
        start = time.perf_counter()
        model = prepared.new_model(seed)
        y_labeled = oracle.query(labeled)
        model.fit(take_rows(dataset.X_train, labeled), y_labeled)
        train_seconds.append(time.perf_counter() - start)
        predicted = model.predict(dataset.X_test)
        labels.append(int(labeled.size))
        for metric in metrics:
            scores[metric].append(
                score_predictions(dataset.y_test, predicted, metric=metric)
            )
        remaining = config.budget - labeled.size
        unlabeled = np.flatnonzero(~is_labeled)
        if remaining <= 0 or unlabeled.size == 0:
            select_seconds.append(0.0)
            break
        start = time.perf_counter()
        context = _context(
            dataset,
            model,
            labeled,
            y_labeled,
            unlabeled,
            geometry,
            required,
            config,
            select_rng,
        )
        size = int(min(config.batch_size, remaining, unlabeled.size))
        batch = build_batch(
            policy, context, batch_size=size, ids=unlabeled, rng=select_rng
        )
        chosen = np.asarray(batch.ids, dtype=np.intp)
        reasons.update(batch.reasons)
        select_seconds.append(time.perf_counter() - start)
        labeled = np.concatenate([labeled, chosen])
        is_labeled[chosen] = True
    flipped = getattr(oracle, "flipped", None)
    errors = int(np.count_nonzero(flipped[labeled])) if flipped is not None else 0
    return History(
        policy=policy_label or policy.name,
        policy_version=policy.version,
        seed=seed,
        labels=tuple(labels),
        scores={m: tuple(v) for m, v in scores.items()},
        train_seconds=tuple(train_seconds),
        select_seconds=tuple(select_seconds),
        reasons=dict(reasons),
        label_errors=errors,
        positions=tuple(int(p) for p in labeled),
    )


def compute_geometry(dataset: Dataset, *, seed: int = 0) -> FloatArray:
    """Dense geometry features of the pool (unsupervised; no label is read)."""
    from labelwise.models import make_featurizer

    kind = dataset.kind
    featurizer = make_featurizer(kind, random_state=seed)
    return np.asarray(featurizer.fit_transform(dataset.X_train), dtype=np.float64)


def _context(
    dataset: Dataset,
    model: Any,
    labeled: IndexArray,
    y_labeled: npt.NDArray[np.str_],
    unlabeled: IndexArray,
    geometry: FloatArray | None,
    required: set[str],
    config: SimulationConfig,
    rng: np.random.Generator,
) -> ScoringContext:
    pool = take_rows(dataset.X_train, unlabeled)
    probas = None
    committee = None
    if required & _MODEL_FIELDS or "labeled_correct" in required:
        probas = np.asarray(model.predict_proba(pool), dtype=np.float64)
    if "committee_probas" in required:
        from labelwise.models import committee_predict_proba, fit_committee

        members = fit_committee(
            model,
            take_rows(dataset.X_train, labeled),
            y_labeled,
            n_members=config.committee_size,
            rng=rng,
        )
        committee = committee_predict_proba(members, pool)
    X = X_labeled = None
    labeled_correct = None
    if geometry is not None:
        X = geometry[unlabeled]
        X_labeled = geometry[labeled]
        fitted = model.predict(take_rows(dataset.X_train, labeled))
        labeled_correct = np.asarray(fitted == y_labeled, dtype=bool)
    return ScoringContext(
        probas=probas,
        X=X,
        committee_probas=committee,
        X_labeled=X_labeled,
        labeled_correct=labeled_correct,
    )
