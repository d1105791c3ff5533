"""scikit-activeml strategies wrapped as labelwise strategies, for the benchmark only.

Only the issue #10 benchmark (``bench/efficiency10.py``) imports this module, and only
in ``bench/.venv-compare`` (``bench/setup-compare``); the labelwise package never
imports scikit-activeml. Each wrapper is a batch strategy: it asks scikit-activeml
for the whole batch and returns scores that rank exactly that batch first (the
k-center strategy of labelwise does the same), so a single-strategy
:class:`~labelwise.policy.BatchPolicy` takes the batch unchanged.

Same model, same features: the strategies read the labelwise context, i.e. the
calibrated default model's probabilities (``probas``) and the same dense geometry
features (``X``, ``X_labeled``: TF-IDF + SVD for text, scaled features for tabular
data) that labelwise's own k-center and representative strategies use.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from labelwise._typing import FloatArray, RandomState
from labelwise.strategies import _REGISTRY as _STRATEGIES
from labelwise.strategies import ScoringContext
from labelwise.strategies._base import Strategy

__all__ = ["SKACTIVEML_POLICIES", "register"]

#: labelwise policy name -> scikit-activeml class name
SKACTIVEML_POLICIES = {
    "skal_coreset": "CoreSet",
    "skal_typiclust": "TypiClust",
    "skal_badge": "Badge",
    "skal_clue": "Clue",
}


def _precomputed_classifier(probas: FloatArray, embeddings: FloatArray) -> Any:
    """A fitted scikit-activeml classifier that looks rows up instead of predicting.

    BADGE and CLUE call ``predict_proba(X, **flag)`` and accept a tuple
    ``(probas, embeddings)``. The benchmark passes ``X`` as a column of row
    indices, so this classifier returns the labelwise model's probabilities and
    the geometry embeddings of those rows: the strategies then see the same model
    as every other policy.
    """
    from skactiveml.base import SkactivemlClassifier

    class Precomputed(SkactivemlClassifier):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(classes=np.arange(probas.shape[1]))

        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Precomputed:
            return self

        def predict_proba(self, X: Any, **flags: Any) -> Any:
            rows = np.asarray(X, dtype=np.float64)[:, 0].astype(np.intp)
            if flags.get("return_embeddings"):
                return probas[rows], embeddings[rows]
            return probas[rows]

        def predict(self, X: Any) -> Any:
            return self.predict_proba(X).argmax(axis=1)

    return Precomputed()


def _seed(rng: RandomState) -> int:
    generator = (
        rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    )
    return int(generator.integers(2**31 - 1))


class _SkactivemlBatch(Strategy):
    """Ask a scikit-activeml query strategy for the whole batch."""

    requires: ClassVar[tuple[str, ...]] = ("probas", "X", "X_labeled")
    uses_rng = True
    reads_probas = True
    skal_class: ClassVar[str]

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.X is not None and context.X_labeled is not None
        assert context.probas is not None
        n, n_labeled = context.X.shape[0], context.X_labeled.shape[0]
        want = int(min(batch_size or 10, n))
        geometry = np.vstack([context.X_labeled, context.X])
        probas = np.vstack(
            [np.zeros((n_labeled, context.probas.shape[1])), context.probas]
        )
        y = np.full(n_labeled + n, np.nan)
        y[:n_labeled] = 0.0  # only "labeled or not" matters to these strategies
        chosen = np.asarray(self._query(geometry, probas, y, want, _seed(rng)))
        scores = np.full(n, -np.inf)
        scores[chosen - n_labeled] = np.arange(want, 0, -1, dtype=np.float64)
        return scores

    def _query(
        self,
        geometry: FloatArray,
        probas: FloatArray,
        y: FloatArray,
        batch_size: int,
        seed: int,
    ) -> Any:
        import skactiveml.pool as pool

        cls = getattr(pool, self.skal_class)
        if self.skal_class in {"CoreSet", "TypiClust"}:
            return cls(random_state=seed).query(geometry, y, batch_size=batch_size)
        index = np.arange(geometry.shape[0], dtype=np.float64)[:, None]
        clf = _precomputed_classifier(probas, geometry)
        if self.skal_class == "Badge":
            strategy = cls(
                clf_embedding_flag_name="return_embeddings", random_state=seed
            )
            return strategy.query(index, y, clf, fit_clf=False, batch_size=batch_size)
        strategy = cls(
            predict_dict={"return_embeddings": True},
            cluster_algo_dict={"n_init": 1},
            random_state=seed,
        )
        return strategy.query(index, y, clf, fit_estimator=False, batch_size=batch_size)


def _make(policy: str, skal_class: str) -> type[Strategy]:
    return type(
        f"Skal{skal_class}",
        (_SkactivemlBatch,),
        {"name": policy, "skal_class": skal_class, "__module__": __name__},
    )


def register() -> None:
    """Register the wrappers as labelwise strategies (idempotent)."""
    names = set(_STRATEGIES.names())
    for policy, skal_class in SKACTIVEML_POLICIES.items():
        if policy not in names:
            _STRATEGIES.register(policy, _make(policy, skal_class))
