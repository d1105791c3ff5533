"""Label quality: inter-annotator agreement and label aggregation.

Long-format labels (one row per item, annotator and label) in; agreement
statistics (:func:`agreement_report`, :func:`agreement_by`) and final labels
(:func:`majority_vote`, :func:`dawid_skene`) out. See ``docs/quality.md``.
"""

from __future__ import annotations

from labelwise.quality._aggregation import (
    DawidSkeneResult,
    dawid_skene,
    majority_vote,
)
from labelwise.quality._agreement import (
    AgreementReport,
    agreement_by,
    agreement_report,
    explode_annotations,
)

__all__ = [
    "AgreementReport",
    "DawidSkeneResult",
    "agreement_by",
    "agreement_report",
    "dawid_skene",
    "explode_annotations",
    "majority_vote",
]
