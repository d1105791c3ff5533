"""The loop: selection rounds, retraining jobs, releases and production failures.

- :mod:`.rounds`: one round (train, score the pool, record and queue a batch);
- :mod:`.jobs` and :mod:`.worker`: background retraining (queued → training →
  done/failed) and the "every N new final labels" trigger;
- :mod:`.releases`: immutable releases, their diff, export and rollback;
- :mod:`.failures`: what the imported production failures did.
"""

from __future__ import annotations

from labelwise.service.loop.failures import failure_summary
from labelwise.service.loop.jobs import (
    check_retrain_triggers,
    claim_job,
    request_training,
    run_job,
    run_next_job,
    training_status,
)
from labelwise.service.loop.releases import (
    MANIFEST_KEYS,
    create_release,
    diff_releases,
    get_release,
    list_releases,
    rollback_to_release,
)
from labelwise.service.loop.rounds import (
    COLD_START,
    DEFAULT_MIN_LABELS,
    MODEL,
    RoundPlan,
    RoundSummary,
    commit_round,
    plan_round,
    run_round,
)
from labelwise.service.loop.worker import TrainingWorker

__all__ = [
    "COLD_START",
    "DEFAULT_MIN_LABELS",
    "MANIFEST_KEYS",
    "MODEL",
    "RoundPlan",
    "RoundSummary",
    "TrainingWorker",
    "check_retrain_triggers",
    "claim_job",
    "commit_round",
    "create_release",
    "diff_releases",
    "failure_summary",
    "get_release",
    "list_releases",
    "plan_round",
    "request_training",
    "rollback_to_release",
    "run_job",
    "run_next_job",
    "run_round",
    "training_status",
]
