"""Stopping rules: when has an active-learning loop bought enough labels?

Each rule is a small stateful object fed once per round (after the model is
retrained) through ``update(...)``; it answers with a :class:`StopDecision`
whose ``reason`` is a sentence carrying the figures behind the answer.
:class:`StoppingCriteria` combines rules and stops at the first that fires.

Rules are looked up by name, like strategies::

    >>> rule = get_stopping_rule("label_budget", max_labels=500)
    >>> rule.update(n_labels=500).stop
    True

References
----------
.. [1] M. Bloodgood and K. Vijay-Shanker, "A method for stopping active
   learning based on stabilizing predictions and the need for user-adjustable
   stopping", CoNLL 2009, pp. 39-47.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.metrics import cohen_kappa_score

from labelwise._registry import Registry
from labelwise._validation import check_int, check_interval
from labelwise.exceptions import ConfigError, InvalidInputError

__all__ = [
    "LabelBudget",
    "MetricPlateau",
    "StabilizingPredictions",
    "StopDecision",
    "StoppingCriteria",
    "StoppingRule",
    "get_stopping_rule",
    "get_stopping_rule_names",
]


@dataclass(frozen=True)
class StopDecision:
    """The answer of a stopping rule after one round.

    Attributes
    ----------
    stop : bool
        True when the loop should stop labelling.
    rule : str
        Registered name of the rule that answered (``"stopping_criteria"`` when
        a combination found no rule firing).
    reason : str
        One sentence with the figures that made the rule fire or not.
    """

    stop: bool
    rule: str
    reason: str


class StoppingRule(ABC):
    """Base class of the stateful stopping rules.

    Subclasses set ``name`` to their registered name and implement
    :meth:`update` and :meth:`reset`.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def update(
        self,
        *,
        n_labels: int,
        stop_set_predictions: Any = None,
        validation_score: float | None = None,
    ) -> StopDecision:
        """Record one round and say whether to stop.

        Parameters
        ----------
        n_labels : int
            Number of labels bought so far.
        stop_set_predictions : array-like of shape (n_stop,), optional
            The current model's predicted labels on a fixed, unlabeled stop set
            (the same items, in the same order, every round).
        validation_score : float, optional
            The current model's score on a fixed validation set (higher is
            better).

        Returns
        -------
        StopDecision
        """

    @abstractmethod
    def reset(self) -> None:
        """Forget every round recorded so far."""

    def _decision(self, stop: bool, reason: str) -> StopDecision:
        return StopDecision(stop=stop, rule=self.name, reason=reason)


def _check_n_labels(n_labels: object, owner: str) -> int:
    return check_int(n_labels, param="n_labels", owner=owner, low=0)


class StabilizingPredictions(StoppingRule):
    """Stop when successive models agree on a fixed stop set.

    Each update compares the new predictions on the stop set with the previous
    round's by Cohen's kappa; the rule fires when the mean of the last
    ``window`` kappas reaches ``threshold`` [1]_. When both prediction vectors
    are constant kappa is undefined; identical vectors then count as full
    agreement (1.0) and different ones as 0.0.

    Parameters
    ----------
    window : int, default=3
        Number of most recent kappas averaged (Bloodgood and Vijay-Shanker
        use 3).
    threshold : float, default=0.99
        Mean kappa at or above which the rule fires, in (0, 1].

    Attributes
    ----------
    kappas_ : list of float
        Agreement between each pair of successive rounds, oldest first.

    References
    ----------
    .. [1] M. Bloodgood and K. Vijay-Shanker, "A method for stopping active
       learning based on stabilizing predictions and the need for
       user-adjustable stopping", CoNLL 2009, pp. 39-47.
    """

    name = "stabilizing_predictions"

    def __init__(self, window: int = 3, threshold: float = 0.99) -> None:
        owner = type(self).__name__
        self.window = check_int(window, param="window", owner=owner, low=1)
        self.threshold = check_interval(
            threshold, param="threshold", owner=owner, low=0.0, high=1.0, closed="right"
        )
        self.kappas_: list[float] = []
        self._previous: np.ndarray[Any, Any] | None = None

    def reset(self) -> None:
        """Forget the previous predictions and every kappa."""
        self.kappas_ = []
        self._previous = None

    def update(
        self,
        *,
        n_labels: int,
        stop_set_predictions: Any = None,
        validation_score: float | None = None,
    ) -> StopDecision:
        """Compare ``stop_set_predictions`` with the previous round's.

        Parameters
        ----------
        n_labels : int
            Number of labels bought so far (reported in the reason).
        stop_set_predictions : array-like of shape (n_stop,)
            Predicted labels on the fixed stop set; required.
        validation_score : float, optional
            Ignored by this rule.

        Returns
        -------
        StopDecision
        """
        owner = type(self).__name__
        n_labels = _check_n_labels(n_labels, owner)
        if stop_set_predictions is None:
            raise InvalidInputError(
                f"{owner} needs stop_set_predictions: the model's predicted labels "
                "on a fixed stop set. Got None instead.",
                hint="Pass model.predict(X_stop) on the same items every round.",
            )
        current = np.asarray(stop_set_predictions)
        if current.ndim != 1 or current.size == 0:
            raise InvalidInputError(
                "stop_set_predictions must be a non-empty 1-D array of labels. "
                f"Got shape {current.shape} instead.",
                hint="Pass model.predict(X_stop), one label per stop-set item.",
            )
        previous = self._previous
        if previous is not None and previous.shape != current.shape:
            raise InvalidInputError(
                f"stop_set_predictions must cover the same {previous.shape[0]} "
                f"stop-set items every round. Got {current.shape[0]} items instead.",
                hint="Keep the stop set fixed; call reset() to start over with a "
                "new one.",
            )
        self._previous = current.copy()
        if previous is None:
            return self._decision(
                False,
                f"First round at {n_labels} labels: no previous predictions on the "
                f"{current.shape[0]}-item stop set to compare with yet.",
            )
        self.kappas_.append(_agreement(previous, current))
        recent = self.kappas_[-self.window :]
        if len(recent) < self.window:
            return self._decision(
                False,
                f"At {n_labels} labels: {len(recent)} of the {self.window} kappas "
                f"needed so far (last kappa {recent[-1]:.4f}; threshold "
                f"{self.threshold:g}).",
            )
        mean = float(np.mean(recent))
        stop = mean >= self.threshold
        verdict = "reaches" if stop else "is below"
        return self._decision(
            stop,
            f"At {n_labels} labels the mean Cohen's kappa of the last {self.window} "
            f"rounds on the stop set is {mean:.4f}, which {verdict} the threshold "
            f"{self.threshold:g}.",
        )


def _agreement(previous: np.ndarray[Any, Any], current: np.ndarray[Any, Any]) -> float:
    """Cohen's kappa between two label vectors; defined as 1.0/0.0 when degenerate."""
    if np.array_equal(previous, current):
        return 1.0
    if np.unique(previous).size == 1 and np.unique(current).size == 1:
        return 0.0
    kappa = float(cohen_kappa_score(previous, current))
    return 0.0 if math.isnan(kappa) else kappa


class MetricPlateau(StoppingRule):
    """Stop when the validation score has stopped improving.

    The rule keeps the best score seen; an update improves on it when the new
    score exceeds the best by more than ``min_delta``. It fires after
    ``patience`` successive updates without such an improvement (early
    stopping, applied to the labelling budget).

    Parameters
    ----------
    patience : int, default=3
        Number of updates without improvement that make the rule fire.
    min_delta : float, default=0.005
        Smallest gain over the best score that counts as an improvement.

    Attributes
    ----------
    best_score_ : float or None
        Best validation score seen so far.
    best_n_labels_ : int or None
        Number of labels at which the best score was reached.
    n_without_improvement_ : int
        Updates since the last improvement.
    """

    name = "metric_plateau"

    def __init__(self, patience: int = 3, min_delta: float = 0.005) -> None:
        owner = type(self).__name__
        self.patience = check_int(patience, param="patience", owner=owner, low=1)
        self.min_delta = check_interval(
            min_delta, param="min_delta", owner=owner, low=0.0
        )
        self.best_score_: float | None = None
        self.best_n_labels_: int | None = None
        self.n_without_improvement_ = 0

    def reset(self) -> None:
        """Forget the best score."""
        self.best_score_ = None
        self.best_n_labels_ = None
        self.n_without_improvement_ = 0

    def update(
        self,
        *,
        n_labels: int,
        stop_set_predictions: Any = None,
        validation_score: float | None = None,
    ) -> StopDecision:
        """Record ``validation_score`` and say whether it has plateaued.

        Parameters
        ----------
        n_labels : int
            Number of labels bought so far.
        stop_set_predictions : array-like, optional
            Ignored by this rule.
        validation_score : float
            Score on the fixed validation set, higher is better; required.

        Returns
        -------
        StopDecision
        """
        owner = type(self).__name__
        n_labels = _check_n_labels(n_labels, owner)
        if validation_score is None:
            raise InvalidInputError(
                f"{owner} needs validation_score: the model's score on a fixed "
                "validation set. Got None instead.",
                hint="Pass e.g. accuracy or macro-F1 on the validation set.",
            )
        score = check_interval(validation_score, param="validation_score", owner=owner)
        best = self.best_score_
        if best is None or score > best + self.min_delta:
            self.best_score_ = score
            self.best_n_labels_ = n_labels
            self.n_without_improvement_ = 0
            previous = "no earlier score" if best is None else f"the best {best:.4f}"
            return self._decision(
                False,
                f"At {n_labels} labels the validation score {score:.4f} improves on "
                f"{previous} (min_delta {self.min_delta:g}).",
            )
        self.n_without_improvement_ += 1
        stop = self.n_without_improvement_ >= self.patience
        return self._decision(
            stop,
            f"At {n_labels} labels the validation score {score:.4f} has not improved "
            f"on the best {best:.4f} (at {self.best_n_labels_} labels) by more than "
            f"{self.min_delta:g} for {self.n_without_improvement_} of "
            f"{self.patience} allowed updates.",
        )


class LabelBudget(StoppingRule):
    """Stop when the number of labels reaches a fixed budget.

    Parameters
    ----------
    max_labels : int
        Budget, at least 1.
    """

    name = "label_budget"

    def __init__(self, max_labels: int) -> None:
        self.max_labels = check_int(
            max_labels, param="max_labels", owner=type(self).__name__, low=1
        )

    def reset(self) -> None:
        """Nothing to forget: the rule is a pure comparison."""

    def update(
        self,
        *,
        n_labels: int,
        stop_set_predictions: Any = None,
        validation_score: float | None = None,
    ) -> StopDecision:
        """Compare ``n_labels`` with the budget.

        Parameters
        ----------
        n_labels : int
            Number of labels bought so far.
        stop_set_predictions, validation_score : optional
            Ignored by this rule.

        Returns
        -------
        StopDecision
        """
        n_labels = _check_n_labels(n_labels, type(self).__name__)
        stop = n_labels >= self.max_labels
        verdict = "reaches" if stop else "is below"
        return self._decision(
            stop,
            f"{n_labels} labels {verdict} the budget of {self.max_labels} labels.",
        )


class StoppingCriteria:
    """Several stopping rules; stops at the first one that fires.

    Every rule is updated each round (so each keeps its history), and the
    decision of the first rule, in the given order, that fires is returned.

    Parameters
    ----------
    rules : iterable of StoppingRule
        At least one rule.
    """

    name = "stopping_criteria"

    def __init__(self, rules: Iterable[StoppingRule]) -> None:
        self.rules = list(rules)
        if not self.rules:
            raise ConfigError(
                "StoppingCriteria needs at least one stopping rule. Got none.",
                hint="Pass e.g. [LabelBudget(1000)]; see get_stopping_rule_names().",
            )
        bad = [r for r in self.rules if not isinstance(r, StoppingRule)]
        if bad:
            raise ConfigError(
                "Every rule of StoppingCriteria must be a StoppingRule. "
                f"Got {bad[0]!r} instead.",
                hint="Build rules with get_stopping_rule(name, **params).",
            )

    def reset(self) -> None:
        """Reset every rule."""
        for rule in self.rules:
            rule.reset()

    def update(
        self,
        *,
        n_labels: int,
        stop_set_predictions: Any = None,
        validation_score: float | None = None,
    ) -> StopDecision:
        """Update every rule; return the first firing decision, else a non-stop one.

        Parameters
        ----------
        n_labels : int
            Number of labels bought so far.
        stop_set_predictions : array-like of shape (n_stop,), optional
            Passed to every rule.
        validation_score : float, optional
            Passed to every rule.

        Returns
        -------
        StopDecision
            The first firing rule's decision; otherwise a non-stop decision whose
            reason joins every rule's reason.
        """
        decisions = [
            rule.update(
                n_labels=n_labels,
                stop_set_predictions=stop_set_predictions,
                validation_score=validation_score,
            )
            for rule in self.rules
        ]
        for decision in decisions:
            if decision.stop:
                return decision
        reasons = " ".join(f"[{d.rule}] {d.reason}" for d in decisions)
        return StopDecision(
            stop=False, rule=self.name, reason=f"No rule fired: {reasons}"
        )


_STOPPING_RULES: Registry[Callable[..., StoppingRule]] = Registry(
    "stopping rule", "labelwise.stopping.get_stopping_rule_names"
)
for _cls in (StabilizingPredictions, MetricPlateau, LabelBudget):
    _STOPPING_RULES.register(_cls.name, _cls)


def get_stopping_rule(name: str, **params: Any) -> StoppingRule:
    """Build a fresh stopping rule by its registered name.

    Parameters
    ----------
    name : str
        One of :func:`get_stopping_rule_names`.
    **params
        Constructor parameters of the rule, validated by it.

    Returns
    -------
    StoppingRule

    Raises
    ------
    UnknownNameError
        When ``name`` is not registered; the message lists the valid names.
    ConfigError
        When a parameter is unknown or out of range.
    """
    factory = _STOPPING_RULES.get(name)
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        accepted = ", ".join(inspect.signature(factory).parameters)
        raise ConfigError(
            f"Stopping rule {name!r} takes the parameters ({accepted}). "
            f"Got {sorted(params)} instead ({exc}).",
            hint="Fix the parameter names; see "
            f"help(labelwise.stopping.{getattr(factory, '__name__', name)}).",
        ) from None
    return factory(**params)


def get_stopping_rule_names() -> list[str]:
    """Names of the registered stopping rules, sorted."""
    return _STOPPING_RULES.names()
