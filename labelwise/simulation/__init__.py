"""Replay the active-learning loop on labeled data and compare policies with random."""

from __future__ import annotations

from labelwise.simulation._benchmark import (
    Comparison,
    PolicyResult,
    compare_policies,
    full_data_score,
    plot_comparison,
)
from labelwise.simulation._loop import History, SimulationConfig, run_simulation
from labelwise.simulation._oracle import NoisyOracle, Oracle

__all__ = [
    "Comparison",
    "History",
    "NoisyOracle",
    "Oracle",
    "PolicyResult",
    "SimulationConfig",
    "compare_policies",
    "full_data_score",
    "plot_comparison",
    "run_simulation",
]
