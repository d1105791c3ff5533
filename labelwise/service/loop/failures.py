"""Production failures: what was imported, and what the loop did with them.

Failure items are imported with ``--role failure``: the item, what the model
said (a ``model_label`` column, kept in ``Item.source["model_label"]``) and
the right label when known (the ``label`` column, a final label). Their
features are the reference set of the error-driven strategy (``X_failures``
in :func:`~labelwise.service.loop.rounds.plan_round`), and their labels join
the training set. :func:`failure_summary` reports on both, for the ROI report
and the API.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelwise.service.store.schema import FinalLabel, Item, Project, Round, Selection

__all__ = ["ERROR_DRIVEN_REASON", "failure_summary"]

#: The reason a round records for an item picked near known errors.
ERROR_DRIVEN_REASON = "failure"


def _shown(text: str | None) -> str | None:
    if text is None:
        return None
    value = json.loads(text)
    return "|".join(value) if isinstance(value, list) else str(value)


def failure_summary(*, session: Session, project: Project) -> dict[str, Any]:
    """Failures imported, with a known right label and a recorded model answer;
    the model's confusions on them; and the error-driven picks of every round.

    Keys: ``failures``, ``with_right_label``, ``with_model_label``,
    ``model_right_on`` (failures whose model answer equals the right label:
    not mistakes after all), ``confusions`` (``[{model_label, right_label,
    count}]``, most frequent first), ``error_driven_picks`` (items rounds
    picked for the ``failure`` reason), ``error_driven_labeled`` (of those,
    with a final label now), ``error_driven_label_counts`` and
    ``error_driven_by_round`` (``[{round, picks}]``).
    """
    rows = session.execute(
        select(Item.source, FinalLabel.label)
        .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id, Item.role == "failure")
    ).all()
    confusions: Counter[tuple[str, str]] = Counter()
    with_label = with_model = model_right = 0
    for source, label in rows:
        said = (source or {}).get("model_label")
        with_label += label is not None
        with_model += said is not None
        if said is not None and label is not None:
            if said == label:
                model_right += 1
            else:
                confusions[(_shown(said) or "", _shown(label) or "")] += 1
    picks = session.execute(
        select(Round.number, func.count())
        .join(Selection, Selection.round_id == Round.id)
        .where(Round.project_id == project.id, Selection.reason == ERROR_DRIVEN_REASON)
        .group_by(Round.number)
        .order_by(Round.number)
    ).all()
    labeled = session.execute(
        select(FinalLabel.label, func.count(func.distinct(FinalLabel.item_id)))
        .join(Selection, Selection.item_id == FinalLabel.item_id)
        .join(Round, Round.id == Selection.round_id)
        .where(Round.project_id == project.id, Selection.reason == ERROR_DRIVEN_REASON)
        .group_by(FinalLabel.label)
    ).all()
    label_counts = {_shown(text) or "": int(n) for text, n in labeled}
    return {
        "failures": len(rows),
        "with_right_label": with_label,
        "with_model_label": with_model,
        "model_right_on": model_right,
        "confusions": [
            {"model_label": said, "right_label": right, "count": n}
            for (said, right), n in confusions.most_common()
        ],
        "error_driven_picks": sum(int(n) for _, n in picks),
        "error_driven_labeled": sum(label_counts.values()),
        "error_driven_label_counts": dict(sorted(label_counts.items())),
        "error_driven_by_round": [
            {"round": int(number), "picks": int(n)} for number, n in picks
        ],
    }
