"""The batch policy spec: frozen, validated data with a content hash.

A :class:`BatchPolicy` says how an annotation batch is made: which strategies
pick which share of it (:class:`MixComponent`), how large the uniformly random
control slice is, optional per-class minimum shares, and the rules the label
queue applies later (:class:`CapRule`, overlap and gold rates). It is plain data:
``to_dict`` / ``from_dict`` round-trip it and ``version`` hashes it, so every
round and release can record exactly which policy chose its items.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from labelwise._validation import check_in_options, check_int, check_interval
from labelwise.exceptions import ConfigError, UnknownNameError
from labelwise.strategies._base import Strategy

__all__ = ["BatchPolicy", "CapRule", "MixComponent"]

_SHARE_ATOL = 1e-6


def _param_message(param: str, owner: str, expected: str, got: object) -> str:
    return (
        f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead."
    )


def _freeze(value: Any, *, where: str) -> Any:
    """A hashable copy of a JSON-like value (lists become tuples)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, where=where) for v in value)
    raise ConfigError(
        f"{where} must hold JSON values (numbers, strings, booleans, null or "
        f"lists of them). Got {value!r} of type {type(value).__name__} instead.",
        hint="Write the value as a number, a string or a list.",
    )


def _thaw(value: Any) -> Any:
    """The JSON-safe form of a value made by :func:`_freeze` (tuples become lists)."""
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class FrozenMapping(Mapping[str, Any]):
    """An immutable, hashable ``str -> value`` mapping with sorted keys.

    Used for strategy parameters and class quotas so that specs stay hashable.
    Compares equal to any mapping with the same items.
    """

    __slots__ = ("_items",)

    def __init__(
        self, items: Mapping[str, Any] | None = None, *, where: str = "mapping"
    ) -> None:
        data = dict(items or {})
        for key in data:
            if not isinstance(key, str):
                raise ConfigError(
                    f"{where} keys must be strings. Got {key!r} of type "
                    f"{type(key).__name__} instead.",
                    hint="Quote the key (class labels are compared as strings).",
                )
        self._items: tuple[tuple[str, Any], ...] = tuple(
            (k, _freeze(data[k], where=f"{where}[{k!r}]")) for k in sorted(data)
        )

    def __getitem__(self, key: str) -> Any:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMapping):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(dict(self._items))

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe ``dict`` (tuples back to lists)."""
        return {k: _thaw(v) for k, v in self._items}


def _check_keys(
    data: object, *, owner: str, required: set[str], optional: set[str]
) -> Mapping[str, Any]:
    """Check ``data`` is a mapping with every required key and no unknown key."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{owner} must be given as a mapping (a JSON object or TOML table). "
            f"Got {type(data).__name__} instead.",
            hint=f"Write {owner} as key = value pairs.",
        )
    valid = required | optional
    unknown = sorted(str(k) for k in data if k not in valid)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in {owner}; valid keys: "
            f"{', '.join(sorted(valid))}.",
            hint="Fix the spelling or remove the key.",
        )
    missing = sorted(required - set(data))
    if missing:
        raise ConfigError(
            f"Missing key(s) {', '.join(map(repr, missing))} in {owner}; required "
            f"keys: {', '.join(sorted(required))}.",
            hint="Add the missing key(s).",
        )
    return data


def _check_bool(value: object, *, param: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(_param_message(param, owner, "a bool", value))
    return value


@dataclass(frozen=True)
class MixComponent:
    """One strategy's share of a batch and the reason its picks are recorded under.

    Parameters
    ----------
    reason : str
        What the items are picked for, recorded on every item this component
        selects: one of ``MixComponent.REASONS``. ``"random"`` is reserved for
        the control slice (set ``BatchPolicy.random_fraction`` instead).
    strategy : str
        A registered strategy name (:func:`labelwise.strategies.get_strategy_names`).
    share : float
        Share of the whole batch, in ``(0, 1]``.
    params : mapping, optional
        Keyword arguments of the strategy. Stored as an immutable sorted mapping
        so the component stays hashable; :meth:`to_dict` gives a plain dict.

    Raises
    ------
    ConfigError
        On an unknown reason or strategy, a share outside ``(0, 1]`` or
        parameters the strategy rejects (the strategy is built once to check).
    """

    #: Reasons a component may record; "random" is kept for the control slice.
    REASONS: ClassVar[tuple[str, ...]] = (
        "bucket",
        "committee",
        "diverse",
        "failure",
        "representative",
        "uncertain",
    )

    reason: str
    strategy: str
    share: float
    params: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        owner = "MixComponent"
        if self.reason == "random":
            raise ConfigError(
                _param_message(
                    "reason",
                    owner,
                    "one of " + ", ".join(map(repr, self.REASONS)),
                    "random",
                ),
                hint="'random' is reserved for the control slice; set "
                "BatchPolicy.random_fraction instead of adding a random component.",
            )
        check_in_options(self.reason, param="reason", owner=owner, options=self.REASONS)
        if not isinstance(self.strategy, str):
            raise ConfigError(
                _param_message(
                    "strategy", owner, "a strategy name (str)", self.strategy
                )
            )
        share = check_interval(
            self.share, param="share", owner=owner, low=0.0, high=1.0, closed="right"
        )
        object.__setattr__(self, "share", share)
        where = f"the params of MixComponent({self.reason!r}, {self.strategy!r})"
        params = self.params
        if isinstance(params, FrozenMapping):
            frozen = params
        elif params is None or isinstance(params, Mapping):
            frozen = FrozenMapping(params, where=where)
        else:
            raise ConfigError(
                _param_message("params", owner, "a mapping or None", params),
                hint="Write the strategy's keyword arguments as a table/object.",
            )
        object.__setattr__(self, "params", frozen)
        self.make_strategy()

    @property
    def param_dict(self) -> dict[str, Any]:
        """The strategy parameters as a plain, JSON-safe dict."""
        assert isinstance(self.params, FrozenMapping)
        return self.params.to_dict()

    def make_strategy(self) -> Strategy:
        """Build the strategy (looked up by name now, not at import time).

        Returns
        -------
        Strategy
            ``get_strategy(self.strategy, **self.params)``.

        Raises
        ------
        ConfigError
            If the name is not registered or the parameters are rejected.
        """
        from labelwise.strategies import get_strategy

        label = f"MixComponent(reason={self.reason!r}, strategy={self.strategy!r})"
        try:
            return get_strategy(self.strategy, **self.param_dict)
        except UnknownNameError as exc:
            raise ConfigError(
                f"Unknown strategy in {label}: {exc.message}",
                hint="Use one of the listed names as `strategy`.",
            ) from exc
        except ConfigError as exc:
            raise ConfigError(
                f"Bad params in {label}: {exc.message}", hint=exc.hint
            ) from exc
        except TypeError as exc:
            raise ConfigError(
                f"Bad params in {label}: {self.param_dict!r} ({exc}).",
                hint="Pass only the keyword arguments the strategy accepts.",
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe dict with sorted keys."""
        return {
            "params": self.param_dict,
            "reason": self.reason,
            "share": self.share,
            "strategy": self.strategy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MixComponent:
        """Build a component from :meth:`to_dict`'s shape (``params`` optional)."""
        d = _check_keys(
            data,
            owner="a MixComponent",
            required={"reason", "strategy", "share"},
            optional={"params"},
        )
        return cls(
            reason=d["reason"],
            strategy=d["strategy"],
            share=d["share"],
            params=d.get("params"),
        )


@dataclass(frozen=True)
class CapRule:
    """Per-annotator rules the label queue applies.

    "Hard" items are those picked for one of ``CapRule.HARD_REASONS``.

    Parameters
    ----------
    max_hard_per_day : int or None, default=None
        Most hard items one annotator gets per day; None means no cap.
    min_normal_share : float, default=0.2
        Least share of an annotator's items that must not be hard, in ``[0, 1]``.
    weekly_reset : bool, default=True
        Whether the per-annotator counters restart every week.
    """

    #: Reasons whose items count as "hard" for the caps.
    HARD_REASONS: ClassVar[frozenset[str]] = frozenset(
        {"committee", "failure", "representative", "uncertain"}
    )

    max_hard_per_day: int | None = None
    min_normal_share: float = 0.2
    weekly_reset: bool = True

    def __post_init__(self) -> None:
        owner = "CapRule"
        if self.max_hard_per_day is not None:
            check_int(
                self.max_hard_per_day, param="max_hard_per_day", owner=owner, low=0
            )
            object.__setattr__(self, "max_hard_per_day", int(self.max_hard_per_day))
        share = check_interval(
            self.min_normal_share, param="min_normal_share", owner=owner, low=0, high=1
        )
        object.__setattr__(self, "min_normal_share", share)
        _check_bool(self.weekly_reset, param="weekly_reset", owner=owner)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe dict with sorted keys."""
        return {
            "max_hard_per_day": self.max_hard_per_day,
            "min_normal_share": self.min_normal_share,
            "weekly_reset": self.weekly_reset,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapRule:
        """Build caps from :meth:`to_dict`'s shape; missing keys take defaults."""
        d = _check_keys(
            data,
            owner="caps",
            required=set(),
            optional={"max_hard_per_day", "min_normal_share", "weekly_reset"},
        )
        return cls(**d)


_POLICY_KEYS = {
    "caps",
    "class_quotas",
    "components",
    "cost_aware",
    "gold_rate",
    "name",
    "overlap_k",
    "overlap_rate",
    "random_fraction",
}


@dataclass(frozen=True, repr=False)
class BatchPolicy:
    """How a batch is made: a strategy mix, a random control slice and queue rules.

    Parameters
    ----------
    components : tuple of MixComponent
        The strategies and their shares, run in this order by
        :func:`~labelwise.policy.build_batch`.
    random_fraction : float, default=0.1
        Share of each batch drawn uniformly from the whole unlabeled pool (the
        control slice), in ``[0, 1]``. Component shares and this must sum to 1.
    class_quotas : mapping of str to float, optional
        Least share of the non-random part per predicted class label (labels
        compared as strings); values in ``[0, 1]`` summing to at most 1.
    cost_aware : bool, default=False
        Divide scores by label cost (``per_unit_cost``) when costs are known.
    caps : CapRule, default=CapRule()
        Per-annotator rules used by the label queue.
    overlap_k : int, default=2
        Number of annotators who label an overlap item, in ``[1, 10]``.
    overlap_rate : float, default=0.1
        Share of items labeled by ``overlap_k`` annotators, in ``[0, 1]``.
    gold_rate : float, default=0.05
        Share of gold (known-answer) items mixed into the queue, in ``[0, 1]``.
    name : str, default="custom"
        A label for people; not part of :attr:`version`.

    Raises
    ------
    ConfigError
        When a field is out of range, the shares do not sum to 1, there is no
        component while ``random_fraction < 1``, or a ``(reason, strategy)``
        pair repeats.
    """

    components: tuple[MixComponent, ...]
    random_fraction: float = 0.1
    class_quotas: Mapping[str, float] | None = None
    cost_aware: bool = False
    caps: CapRule = field(default_factory=CapRule)
    overlap_k: int = 2
    overlap_rate: float = 0.1
    gold_rate: float = 0.05
    name: str = "custom"

    def __post_init__(self) -> None:
        owner = "BatchPolicy"
        set_ = object.__setattr__
        if isinstance(self.components, MixComponent) or not isinstance(
            self.components, tuple | list
        ):
            raise ConfigError(
                _param_message(
                    "components", owner, "a tuple of MixComponent", self.components
                ),
                hint="Wrap a single component in a tuple: components=(component,).",
            )
        components = tuple(self.components)
        for item in components:
            if not isinstance(item, MixComponent):
                raise ConfigError(
                    _param_message(
                        "components", owner, "a tuple of MixComponent", item
                    ),
                    hint="Build each entry with MixComponent(reason, strategy, share).",
                )
        set_(self, "components", components)
        fraction = check_interval(
            self.random_fraction, param="random_fraction", owner=owner, low=0, high=1
        )
        set_(self, "random_fraction", fraction)
        if not components and fraction != 1.0:
            raise ConfigError(
                f"A BatchPolicy needs at least one component unless random_fraction "
                f"is 1. Got no components and random_fraction={fraction!r}.",
                hint="Add a MixComponent, or set random_fraction=1 for a purely "
                "random policy.",
            )
        seen: set[tuple[str, str]] = set()
        for item in components:
            pair = (item.reason, item.strategy)
            if pair in seen:
                raise ConfigError(
                    f"Each (reason, strategy) pair may appear once in a BatchPolicy. "
                    f"Got {item.reason}/{item.strategy} twice.",
                    hint="Merge the two components into one and add their shares.",
                )
            seen.add(pair)
        total = fraction + math.fsum(c.share for c in components)
        if abs(total - 1.0) > _SHARE_ATOL:
            parts = [f"random_fraction {fraction:g}"] + [
                f"{c.reason}/{c.strategy} {c.share:g}" for c in components
            ]
            raise ConfigError(
                f"The shares of BatchPolicy must sum to 1. Got {' + '.join(parts)} "
                f"= {total:.6g} instead.",
                hint=f"Change the shares so that they add up to 1 (now off by "
                f"{1.0 - total:+.6g}).",
            )
        set_(self, "class_quotas", self._checked_quotas(self.class_quotas))
        set_(
            self,
            "cost_aware",
            _check_bool(self.cost_aware, param="cost_aware", owner=owner),
        )
        if not isinstance(self.caps, CapRule):
            raise ConfigError(
                _param_message("caps", owner, "a CapRule", self.caps),
                hint="Build it with CapRule(...) or CapRule.from_dict(...).",
            )
        set_(
            self,
            "overlap_k",
            check_int(self.overlap_k, param="overlap_k", owner=owner, low=1, high=10),
        )
        for param in ("overlap_rate", "gold_rate"):
            value = check_interval(
                getattr(self, param), param=param, owner=owner, low=0, high=1
            )
            set_(self, param, value)
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                _param_message("name", owner, "a non-empty str", self.name)
            )

    @staticmethod
    def _checked_quotas(quotas: object) -> FrozenMapping | None:
        if quotas is None:
            return None
        if not isinstance(quotas, Mapping):
            raise ConfigError(
                _param_message(
                    "class_quotas",
                    "BatchPolicy",
                    "a mapping label -> share or None",
                    quotas,
                )
            )
        frozen = FrozenMapping(
            {
                k: check_interval(
                    v, param=f"class_quotas[{k!r}]", owner="BatchPolicy", low=0, high=1
                )
                for k, v in quotas.items()
            },
            where="class_quotas",
        )
        total = math.fsum(frozen.values())
        if total > 1.0 + _SHARE_ATOL:
            raise ConfigError(
                f"The 'class_quotas' of BatchPolicy must sum to at most 1. Got "
                f"{frozen!r}, summing to {total:.6g} instead.",
                hint="Lower the per-class shares: they are minimum shares of the "
                "non-random part of each batch.",
            )
        return frozen

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain, JSON-safe data with sorted keys.

        Components keep their order (it is the order they run in).
        """
        quotas = self.class_quotas
        return {
            "caps": self.caps.to_dict(),
            "class_quotas": None if quotas is None else dict(sorted(quotas.items())),
            "components": [c.to_dict() for c in self.components],
            "cost_aware": self.cost_aware,
            "gold_rate": self.gold_rate,
            "name": self.name,
            "overlap_k": self.overlap_k,
            "overlap_rate": self.overlap_rate,
            "random_fraction": self.random_fraction,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchPolicy:
        """Build a policy from :meth:`to_dict`'s shape.

        ``components`` is required; every other key may be left out (or null)
        and takes its default.

        Raises
        ------
        ConfigError
            On unknown or missing keys, or any invalid value.
        """
        d = dict(
            _check_keys(
                data,
                owner="a BatchPolicy",
                required={"components"},
                optional=_POLICY_KEYS,
            )
        )
        raw = d.pop("components")
        if not isinstance(raw, list | tuple):
            raise ConfigError(
                _param_message("components", "BatchPolicy", "a list of tables", raw),
                hint="Write components as a list of {reason, strategy, share} objects "
                "(TOML: [[components]] tables).",
            )
        components = tuple(MixComponent.from_dict(c) for c in raw)
        caps = d.pop("caps", None)
        kwargs = {k: v for k, v in d.items() if v is not None}
        return cls(
            components=components,
            caps=CapRule() if caps is None else CapRule.from_dict(caps),
            **kwargs,
        )

    def canonical_json(self) -> str:
        """The JSON hashed by :attr:`version`: ``to_dict()`` without ``name``."""
        data = self.to_dict()
        del data["name"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def version(self) -> str:
        """First 12 hex digits of the SHA-256 of :meth:`canonical_json`.

        Equal for equal specs whatever their ``name``; recorded with every round
        and release as the selection policy version.
        """
        digest = hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()
        return digest[:12]

    def required_inputs(self) -> set[str]:
        """ScoringContext fields the components' strategies require.

        Lets a caller skip computing what no component reads (a committee,
        geometry features). Empty for a purely random policy.
        """
        needed: set[str] = set()
        for component in self.components:
            needed.update(component.make_strategy().requires)
        return needed

    def __repr__(self) -> str:
        mix = ", ".join(
            [f"random={self.random_fraction:g}"]
            + [f"{c.reason}/{c.strategy}={c.share:g}" for c in self.components]
        )
        return f"BatchPolicy(name={self.name!r}, version={self.version!r}, {mix})"
