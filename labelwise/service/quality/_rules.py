"""A project's quality settings and the pure decision for one item's votes.

The settings live in ``Project.settings["quality"]`` (JSON, no column):

- ``dispute_rules``: ``disagreement``, ``gold_failure`` and ``flag``, each on
  (the default) or off. An item caught by a rule that is on goes to the
  reviewer queue and gets no final label until a reviewer settles it;
- ``aggregation``: ``majority`` (the default) or ``dawid_skene``;
- ``tie``: the majority tie rule, ``first`` (the first tied label in the
  project's label order, the default) or ``random`` (one tied label drawn
  with a generator seeded by the item id, so the same votes always give the
  same label).

:func:`decide` applies them to one item's queue votes; it reads no database.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from labelwise.exceptions import InvalidInputError

if TYPE_CHECKING:
    from labelwise.service.queue.rules import Route

__all__ = [
    "AGGREGATIONS",
    "DISPUTE_RULES",
    "QUEUE_METHODS",
    "TIES",
    "Decision",
    "QualitySettings",
    "decide",
    "decide_item",
    "label_order",
    "majority",
]

#: Names of the dispute rules, each on or off.
DISPUTE_RULES = ("disagreement", "gold_failure", "flag")
#: Aggregation methods of a project (``FinalLabel.method`` of their labels).
AGGREGATIONS = ("majority", "dawid_skene")
#: Majority tie rules.
TIES = ("first", "random")
#: Final-label methods that come from queue votes (re-decided when votes change).
QUEUE_METHODS = ("single", "agreement", "majority", "dawid_skene")
_KEY = "quality"

DecisionKind = Literal["wait", "review", "final"]


@dataclass(frozen=True)
class QualitySettings:
    """Which disputes go to reviewers, and how votes become final labels."""

    disagreement: bool = True
    gold_failure: bool = True
    flag: bool = True
    aggregation: str = "majority"
    tie: str = "first"

    def __post_init__(self) -> None:
        for name in DISPUTE_RULES:
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(
                    f"The dispute rule {name!r} must be true or false. Got "
                    f"{getattr(self, name)!r} instead.",
                    hint=f"Pass --{name.replace('_', '-')} or "
                    f"--no-{name.replace('_', '-')}.",
                )
        if self.aggregation not in AGGREGATIONS:
            raise InvalidInputError(
                f"The aggregation must be one of {', '.join(AGGREGATIONS)}. Got "
                f"{self.aggregation!r} instead.",
                hint="Pass --aggregation majority or --aggregation dawid_skene.",
            )
        if self.tie not in TIES:
            raise InvalidInputError(
                f"The majority tie rule must be one of {', '.join(TIES)}. Got "
                f"{self.tie!r} instead.",
                hint="Pass --tie first or --tie random.",
            )

    @classmethod
    def of(cls, project: Any) -> QualitySettings:
        """The settings stored on ``project`` (defaults for what is missing)."""
        stored = (getattr(project, "settings", None) or {}).get(_KEY) or {}
        return cls.from_dict(stored)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualitySettings:
        """Build from the JSON form (:meth:`to_dict`); unknown keys are refused."""
        rules = data.get("dispute_rules") or {}
        unknown = sorted(set(data) - {"dispute_rules", "aggregation", "tie"}) + sorted(
            set(rules) - set(DISPUTE_RULES)
        )
        if unknown:
            raise InvalidInputError(
                f"Unknown quality setting(s): {', '.join(unknown)}. Valid: "
                f"dispute_rules ({', '.join(DISPUTE_RULES)}), aggregation, tie.",
                hint="Check the spelling against docs/quality.md.",
            )
        return cls(
            **{name: rules[name] for name in DISPUTE_RULES if name in rules},
            **{k: data[k] for k in ("aggregation", "tie") if k in data},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``Project.settings["quality"]``."""
        return {
            "dispute_rules": {name: getattr(self, name) for name in DISPUTE_RULES},
            "aggregation": self.aggregation,
            "tie": self.tie,
        }

    def stored_in(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """A copy of a project's ``settings`` with these quality settings in it."""
        return {**(settings or {}), _KEY: self.to_dict()}


@dataclass(frozen=True)
class Decision:
    """Where an item's votes lead, and with which final label if any."""

    kind: DecisionKind
    reason: str
    label: str | None = None
    method: str | None = None
    confidence: float | None = None

    @property
    def route(self) -> Route:
        """The queue's :class:`Route` of this decision."""
        from labelwise.service.queue.rules import Route

        return Route(self.kind, self.label, self.reason)


def majority(
    votes: Sequence[str], *, order: Sequence[str], tie: str, seed: int
) -> tuple[str, float]:
    """The most voted label and its share of the votes, ties by ``tie``.

    ``order`` ranks the labels for ``tie="first"`` (labels not in it come
    after, sorted); ``tie="random"`` draws among the tied labels with
    ``numpy.random.default_rng(seed)``.
    """
    counts = Counter(votes)
    top = max(counts.values())
    rank = {label: i for i, label in enumerate(order)}
    tied = sorted(
        (label for label, n in counts.items() if n == top),
        key=lambda label: (rank.get(label, len(rank)), label),
    )
    if tie == "random" and len(tied) > 1:
        chosen = tied[int(np.random.default_rng(seed).integers(len(tied)))]
    else:
        chosen = tied[0]
    return chosen, top / len(votes)


def decide(
    votes: Sequence[str],
    *,
    flags: Sequence[str] = (),
    target: int,
    settings: QualitySettings,
    order: Sequence[str],
    seed: int,
) -> Decision:
    """Route one pool item's queue votes under the project's quality settings.

    1. Fewer votes than ``target``: ``wait``.
    2. A non-empty flag and the ``flag`` rule on: ``review`` (``flagged``).
    3. Votes that differ and the ``disagreement`` rule on: ``review``.
    4. Otherwise ``final``: ``single`` (one vote) or ``agreement`` (all
       equal), confidence 1; votes that differ (rule off) give the
       :func:`majority` label, method ``majority``, confidence its share.

    ``order`` is the project's label order (encoded labels) for the tie rule
    and ``seed`` (the item id) seeds ``tie="random"``. Dawid–Skene labels are
    fitted over the whole project by ``reaggregate``; per item the majority
    stands in until then.
    """
    if len(votes) < max(1, target):
        return Decision("wait", "waiting")
    if settings.flag and any(flags):
        return Decision("review", "flagged")
    if len(set(votes)) > 1:
        if settings.disagreement:
            return Decision("review", "disagreement")
        label, share = majority(votes, order=order, tie=settings.tie, seed=seed)
        return Decision("final", "majority", label, "majority", share)
    method = "single" if len(votes) == 1 else "agreement"
    return Decision("final", method, votes[0], method, 1.0)


def label_order(project: Any) -> list[str]:
    """The project's labels as stored (JSON text), in the project's order."""
    if project.multi_label:
        return [json.dumps([str(label)]) for label in project.labels]
    return [json.dumps(str(label)) for label in project.labels]


def decide_item(
    project: Any,
    item_id: int,
    votes: Sequence[str],
    *,
    flags: Sequence[str] = (),
    target: int,
) -> Decision:
    """:func:`decide` with the project's settings and label order, seeded by item."""
    return decide(
        votes,
        flags=flags,
        target=target,
        settings=QualitySettings.of(project),
        order=label_order(project),
        seed=int(item_id),
    )
