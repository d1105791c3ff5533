"""Scoring strategies: pure vectorised scorers registered by name.

Every strategy maps a :class:`ScoringContext` over ``n`` pool items to ``n``
finite scores; a higher score means "label this first". Look them up with
:func:`get_strategy` and list them with :func:`get_strategy_names`.
"""

from __future__ import annotations

from typing import Any

from labelwise._registry import Registry
from labelwise.strategies._base import ScoringContext, Strategy
from labelwise.strategies._committee import (
    ConsensusKL,
    VoteEntropy,
    check_committee_probas,
    consensus_kl,
    vote_entropy,
)
from labelwise.strategies._cost import CostWeighted, check_costs, per_unit_cost
from labelwise.strategies._diversity import (
    ClusterQuota,
    KCenter,
    cluster_quota_scores,
    kcenter_greedy_scores,
)
from labelwise.strategies._error_driven import (
    ErrorDriven,
    error_proximity_scores,
    error_reference_set,
)
from labelwise.strategies._regression import (
    RegressionVariance,
    check_committee_predictions,
    prediction_variance,
)
from labelwise.strategies._representative import (
    DensityWeighted,
    Representative,
    WeightedClusters,
    information_density_scores,
    knn_density,
    representative_scores,
    weighted_cluster_scores,
)
from labelwise.strategies._uncertainty import (
    ConfidenceBuckets,
    Entropy,
    LeastConfidence,
    Margin,
    confidence_bucket_scores,
    confidence_buckets_of,
    entropy,
    least_confidence,
    margin,
)

__all__ = [
    "ClusterQuota",
    "ConfidenceBuckets",
    "ConsensusKL",
    "CostWeighted",
    "DensityWeighted",
    "Entropy",
    "ErrorDriven",
    "KCenter",
    "LeastConfidence",
    "Margin",
    "RegressionVariance",
    "Representative",
    "ScoringContext",
    "Strategy",
    "VoteEntropy",
    "WeightedClusters",
    "check_committee_predictions",
    "check_committee_probas",
    "check_costs",
    "cluster_quota_scores",
    "confidence_bucket_scores",
    "confidence_buckets_of",
    "consensus_kl",
    "entropy",
    "error_proximity_scores",
    "error_reference_set",
    "get_strategy",
    "get_strategy_names",
    "information_density_scores",
    "kcenter_greedy_scores",
    "knn_density",
    "least_confidence",
    "margin",
    "per_unit_cost",
    "prediction_variance",
    "representative_scores",
    "vote_entropy",
    "weighted_cluster_scores",
]

_REGISTRY: Registry[type[Strategy]] = Registry(
    "strategy", "labelwise.strategies.get_strategy_names"
)
for _cls in (
    ClusterQuota,
    ConfidenceBuckets,
    ConsensusKL,
    CostWeighted,
    DensityWeighted,
    Entropy,
    ErrorDriven,
    KCenter,
    LeastConfidence,
    Margin,
    RegressionVariance,
    Representative,
    VoteEntropy,
    WeightedClusters,
):
    _REGISTRY.register(_cls.name, _cls)


def get_strategy(name: str, **params: Any) -> Strategy:
    """Return the strategy registered as ``name``, built with ``params``.

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered; the message lists the valid names.
    """
    return _REGISTRY.get(name)(**params)


def get_strategy_names() -> list[str]:
    """Names of every registered strategy, sorted."""
    return _REGISTRY.names()
