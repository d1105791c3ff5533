"""Label quality in the service: dispute rules, aggregation, agreement, annotators.

- :class:`QualitySettings` (``Project.settings["quality"]``): which disputes
  go to reviewers and how votes become final labels; :func:`decide` applies
  them to one item (the queue's submit calls it);
- :func:`reaggregate`, :func:`update_quality_settings`: re-decide every item
  (Dawid–Skene is fitted over the whole project here);
- :func:`project_agreement`, :func:`annotator_quality`: the leads' figures.

Calibration sessions are in :mod:`labelwise.service.store.calibration`.
See ``docs/quality.md``.
"""

from __future__ import annotations

from labelwise.service.quality._aggregate import (
    AggregationSummary,
    reaggregate,
    refresh_before_round,
    update_quality_settings,
)
from labelwise.service.quality._report import (
    BREAKDOWNS,
    FIGURES,
    agreement_figures,
    annotator_quality,
    answers_frame,
    project_agreement,
)
from labelwise.service.quality._rules import (
    AGGREGATIONS,
    DISPUTE_RULES,
    QUEUE_METHODS,
    TIES,
    Decision,
    QualitySettings,
    decide,
    decide_item,
    majority,
)

__all__ = [
    "AGGREGATIONS",
    "BREAKDOWNS",
    "DISPUTE_RULES",
    "FIGURES",
    "QUEUE_METHODS",
    "TIES",
    "AggregationSummary",
    "Decision",
    "QualitySettings",
    "agreement_figures",
    "annotator_quality",
    "answers_frame",
    "decide",
    "decide_item",
    "majority",
    "project_agreement",
    "reaggregate",
    "refresh_before_round",
    "update_quality_settings",
]
