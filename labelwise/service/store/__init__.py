"""Persistence only: engines and sessions, projects, items and labels.

Every store function takes the session keyword-only (``session=``); the
caller owns the transaction (:func:`transaction`, :func:`read_only`).
"""

from __future__ import annotations

from labelwise.service.store.engine import (
    make_engine,
    make_sessionmaker,
    normalize_url,
    read_only,
    transaction,
)
from labelwise.service.store.items import (
    count_items,
    get_item,
    iter_items,
    labeled_items,
    unlabeled_pool,
)
from labelwise.service.store.labels import (
    FINAL_LABEL_METHODS,
    LabelValue,
    decode_label,
    decode_label_text,
    encode_label,
    final_label_counts,
    set_final_label,
)
from labelwise.service.store.projects import (
    add_guideline,
    create_project,
    current_guideline,
    get_project,
    list_projects,
    project_summary,
)

__all__ = [
    "FINAL_LABEL_METHODS",
    "LabelValue",
    "add_guideline",
    "count_items",
    "create_project",
    "current_guideline",
    "decode_label",
    "decode_label_text",
    "encode_label",
    "final_label_counts",
    "get_item",
    "get_project",
    "iter_items",
    "labeled_items",
    "list_projects",
    "make_engine",
    "make_sessionmaker",
    "normalize_url",
    "project_summary",
    "read_only",
    "set_final_label",
    "transaction",
    "unlabeled_pool",
]
