"""The loop: selection rounds (train, score the pool, record a batch).

Retraining jobs, releases and the ROI report join this package later.
"""

from __future__ import annotations

from labelwise.service.loop.rounds import (
    COLD_START,
    DEFAULT_MIN_LABELS,
    MODEL,
    RoundSummary,
    run_round,
)

__all__ = ["COLD_START", "DEFAULT_MIN_LABELS", "MODEL", "RoundSummary", "run_round"]
