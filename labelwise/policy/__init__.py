"""Batch policies: which strategies fill which share of an annotation batch.

A :class:`BatchPolicy` is frozen, validated data with a content hash
(:attr:`BatchPolicy.version`); :func:`build_batch` applies it to a scoring
context. Named policies come from :func:`get_policy`, and :func:`load_policy`
also reads a policy from a JSON or TOML file.
"""

from __future__ import annotations

from labelwise.policy._batch import Batch, build_batch
from labelwise.policy._named import get_policy, get_policy_names, load_policy
from labelwise.policy._spec import BatchPolicy, CapRule, MixComponent

__all__ = [
    "Batch",
    "BatchPolicy",
    "CapRule",
    "MixComponent",
    "build_batch",
    "get_policy",
    "get_policy_names",
    "load_policy",
]
