import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.exceptions import ConfigError, UnknownNameError
from labelwise.policy import (
    BatchPolicy,
    CapRule,
    MixComponent,
    get_policy,
    get_policy_names,
    load_policy,
)
from labelwise.strategies import get_strategy_names


def fixed_policy(**changes):
    fields = {
        "components": (
            MixComponent("uncertain", "margin", 0.6),
            MixComponent("bucket", "confidence_buckets", 0.3, params={"n_buckets": 5}),
        ),
        "random_fraction": 0.1,
        "name": "fixed",
    }
    fields.update(changes)
    return BatchPolicy(**fields)


# --- validation messages ---------------------------------------------------


def test_random_fraction_out_of_range_message():
    with pytest.raises(ConfigError) as info:
        fixed_policy(random_fraction=1.5)
    assert str(info.value) == (
        "The 'random_fraction' parameter of BatchPolicy must be a float in the "
        "range [0, 1]. Got 1.5 instead."
    )


def test_shares_not_summing_to_one_message():
    with pytest.raises(ConfigError) as info:
        BatchPolicy(
            components=(MixComponent("uncertain", "margin", 0.6),),
            random_fraction=0.1,
        )
    assert str(info.value) == (
        "The shares of BatchPolicy must sum to 1. Got random_fraction 0.1 + "
        "uncertain/margin 0.6 = 0.7 instead. Change the shares so that they add "
        "up to 1 (now off by +0.3)."
    )


def test_shares_within_tolerance_are_accepted():
    policy = BatchPolicy(
        components=(MixComponent("uncertain", "margin", 0.9 + 5e-7),),
        random_fraction=0.1,
    )
    assert policy.components[0].share == pytest.approx(0.9, abs=1e-6)


def test_unknown_strategy_message():
    with pytest.raises(ConfigError) as info:
        MixComponent("uncertain", "marginn", 0.5)
    names = ", ".join(get_strategy_names())
    assert str(info.value) == (
        "Unknown strategy in MixComponent(reason='uncertain', strategy='marginn'): "
        f"'marginn' is not a strategy; valid names: {names} "
        "(labelwise.strategies.get_strategy_names()). Use one of the listed names "
        "as `strategy`."
    )
    assert isinstance(info.value.__cause__, UnknownNameError)


def test_bad_strategy_params_are_rejected_at_build():
    with pytest.raises(ConfigError, match=r"n_buckets.*Got 0 instead"):
        MixComponent("bucket", "confidence_buckets", 0.5, params={"n_buckets": 0})
    with pytest.raises(ConfigError, match=r"Bad params.*\{'typo': 1\}"):
        MixComponent("uncertain", "margin", 0.5, params={"typo": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reason": "random"}, "reserved for the control slice"),
        ({"reason": "curious"}, "The 'reason' parameter of MixComponent must be one"),
        ({"share": 0.0}, r"range \(0, 1\]. Got 0.0 instead"),
        ({"share": 1.5}, r"range \(0, 1\]. Got 1.5 instead"),
        ({"share": "0.5"}, "Got '0.5' instead"),
        ({"strategy": 3}, "must be a strategy name"),
        ({"params": [1, 2]}, "must be a mapping or None"),
        ({"params": {"x": object()}}, "must hold JSON values"),
    ],
)
def test_mix_component_validation(kwargs, match):
    fields = {"reason": "uncertain", "strategy": "margin", "share": 0.5, **kwargs}
    with pytest.raises(ConfigError, match=match):
        MixComponent(**fields)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_hard_per_day": -1}, "'max_hard_per_day' parameter of CapRule"),
        ({"max_hard_per_day": 2.5}, "must be an int"),
        ({"min_normal_share": 1.2}, "'min_normal_share' parameter of CapRule"),
        ({"weekly_reset": "yes"}, "'weekly_reset' parameter of CapRule must be a bool"),
    ],
)
def test_cap_rule_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CapRule(**kwargs)


def test_cap_rule_defaults_and_hard_reasons():
    caps = CapRule()
    assert (caps.max_hard_per_day, caps.min_normal_share, caps.weekly_reset) == (
        None,
        0.2,
        True,
    )
    assert CapRule.HARD_REASONS == {
        "uncertain",
        "failure",
        "committee",
        "representative",
    }
    assert CapRule(max_hard_per_day=0).max_hard_per_day == 0


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"components": ()}, "needs at least one component"),
        ({"overlap_k": 0}, "'overlap_k' parameter of BatchPolicy"),
        ({"overlap_k": 11}, r"range \[1, 10\]. Got 11"),
        ({"overlap_rate": -0.1}, "'overlap_rate' parameter of BatchPolicy"),
        ({"gold_rate": 2}, "'gold_rate' parameter of BatchPolicy"),
        ({"cost_aware": 1}, "'cost_aware' parameter of BatchPolicy must be a bool"),
        ({"caps": {"max_hard_per_day": 3}}, "must be a CapRule"),
        ({"name": ""}, "'name' parameter of BatchPolicy must be a non-empty str"),
        ({"class_quotas": {"a": 0.7, "b": 0.5}}, "sum to at most 1"),
        ({"class_quotas": {"a": 1.5}}, r"class_quotas\['a'\]"),
        ({"class_quotas": {1: 0.5}}, "class_quotas keys must be strings"),
        ({"components": MixComponent("uncertain", "margin", 0.9)}, "Wrap a single"),
    ],
)
def test_batch_policy_validation(changes, match):
    with pytest.raises(ConfigError, match=match):
        fixed_policy(**changes)


def test_duplicate_reason_strategy_pair_is_rejected():
    with pytest.raises(ConfigError, match="uncertain/margin twice"):
        BatchPolicy(
            components=(
                MixComponent("uncertain", "margin", 0.5),
                MixComponent("uncertain", "margin", 0.4),
            ),
            random_fraction=0.1,
        )
    # The same strategy under another reason is a different component.
    policy = BatchPolicy(
        components=(
            MixComponent("uncertain", "margin", 0.5),
            MixComponent("bucket", "margin", 0.5),
        ),
        random_fraction=0.0,
    )
    assert len(policy.components) == 2


def test_purely_random_policy_needs_no_component():
    policy = BatchPolicy(components=(), random_fraction=1)
    assert policy.random_fraction == 1.0
    assert isinstance(policy.random_fraction, float)
    assert policy.required_inputs() == set()


# --- to_dict / from_dict / version -------------------------------------------


def test_to_dict_is_json_safe_sorted_and_complete():
    policy = fixed_policy(class_quotas={"b": 0.2, "a": 0.3})
    data = policy.to_dict()
    assert list(data) == sorted(data)
    assert set(data) == {f.name for f in dataclasses.fields(BatchPolicy)}
    assert list(data["class_quotas"]) == ["a", "b"]
    assert data["components"][1]["params"] == {"n_buckets": 5}
    assert isinstance(data["components"][1]["params"], dict)
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_round_trip_through_dict_and_json():
    policy = fixed_policy(
        class_quotas={"spam": 0.25},
        cost_aware=True,
        caps=CapRule(max_hard_per_day=40, min_normal_share=0.3, weekly_reset=False),
        overlap_k=3,
        overlap_rate=0.2,
        gold_rate=0.0,
    )
    again = BatchPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy
    assert again.to_dict() == policy.to_dict()
    assert again.version == policy.version
    assert hash(again) == hash(policy)


def test_params_with_lists_stay_hashable_and_round_trip():
    component = MixComponent("uncertain", "margin", 1.0, params={})
    assert component.params == {}
    assert hash(component) == hash(MixComponent("uncertain", "margin", 1.0))
    frozen = MixComponent.from_dict(
        {"reason": "bucket", "strategy": "confidence_buckets", "share": 1.0}
    )
    assert frozen.to_dict()["params"] == {}


def test_from_dict_rejects_unknown_and_missing_keys():
    data = fixed_policy().to_dict()
    with pytest.raises(ConfigError, match=r"Unknown key.*'random_fration'.*valid keys"):
        BatchPolicy.from_dict({**data, "random_fration": 0.1})
    del data["components"]
    with pytest.raises(ConfigError, match=r"Missing key.*'components'"):
        BatchPolicy.from_dict(data)
    with pytest.raises(ConfigError, match=r"Missing key.*'share'.*MixComponent"):
        BatchPolicy.from_dict(
            {"components": [{"reason": "uncertain", "strategy": "margin"}]}
        )
    with pytest.raises(ConfigError, match=r"Unknown key.*'max_hard'.*caps"):
        BatchPolicy.from_dict(
            {
                "components": [
                    {"reason": "uncertain", "strategy": "margin", "share": 1}
                ],
                "random_fraction": 0,
                "caps": {"max_hard": 3},
            }
        )
    with pytest.raises(ConfigError, match="must be given as a mapping"):
        BatchPolicy.from_dict([])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="list of tables"):
        BatchPolicy.from_dict({"components": "margin"})


def test_from_dict_fills_defaults():
    policy = BatchPolicy.from_dict(
        {
            "components": [{"reason": "uncertain", "strategy": "margin", "share": 0.9}],
            "gold_rate": None,
        }
    )
    assert policy.random_fraction == 0.1
    assert policy.gold_rate == 0.05
    assert policy.caps == CapRule()
    assert policy.name == "custom"


def test_version_is_a_fixed_hash_of_the_content():
    # Hard-coded on purpose: a change to to_dict or the hashing changes every
    # recorded "selection policy version" and must be a deliberate decision.
    assert fixed_policy().version == "82be86b676e3"
    assert fixed_policy().canonical_json().startswith('{"caps":{"max_hard_per_day"')


def test_version_ignores_name_but_not_content():
    base = fixed_policy()
    assert dataclasses.replace(base, name="renamed").version == base.version
    variants = [
        {
            "random_fraction": 0.2,
            "components": (
                base.components[0],
                MixComponent("bucket", "confidence_buckets", 0.2, {"n_buckets": 5}),
            ),
        },
        {"components": base.components[::-1]},
        {
            "components": (
                base.components[0],
                MixComponent("bucket", "confidence_buckets", 0.3),
            )
        },
        {"class_quotas": {"a": 0.5}},
        {"cost_aware": True},
        {"caps": CapRule(max_hard_per_day=10)},
        {"caps": CapRule(min_normal_share=0.5)},
        {"caps": CapRule(weekly_reset=False)},
        {"overlap_k": 3},
        {"overlap_rate": 0.2},
        {"gold_rate": 0.1},
    ]
    versions = {dataclasses.replace(base, **v).version for v in variants}
    assert base.version not in versions
    assert len(versions) == len(variants)


def test_int_and_float_spellings_hash_alike():
    a = BatchPolicy(
        components=(MixComponent("uncertain", "margin", 1),), random_fraction=0
    )
    b = BatchPolicy(
        components=(MixComponent("uncertain", "margin", 1.0),), random_fraction=0.0
    )
    assert a.version == b.version
    assert a == b


def test_required_inputs_and_repr():
    policy = fixed_policy()
    assert policy.required_inputs() == {"probas"}
    text = repr(policy)
    assert text.startswith(
        "BatchPolicy(name='fixed', version='82be86b676e3', random=0.1"
    )
    assert "uncertain/margin=0.6" in text


reasons = st.sampled_from(MixComponent.REASONS)


@st.composite
def policies(draw):
    names = draw(
        st.lists(
            st.sampled_from(
                ["margin", "entropy", "least_confidence", "confidence_buckets"]
            ),
            unique=True,
            max_size=4,
        )
    )
    weights = draw(
        st.lists(st.integers(1, 20), min_size=len(names), max_size=len(names))
    )
    random_weight = draw(st.integers(0 if names else 1, 20))
    total = random_weight + sum(weights)
    components = tuple(
        MixComponent(draw(reasons), name, w / total)
        for name, w in zip(names, weights, strict=True)
    )
    return BatchPolicy(
        components=components,
        random_fraction=random_weight / total,
        cost_aware=draw(st.booleans()),
        overlap_k=draw(st.integers(1, 10)),
        gold_rate=draw(st.floats(0, 1)),
        caps=CapRule(max_hard_per_day=draw(st.none() | st.integers(0, 500))),
        name=draw(st.text(min_size=1, max_size=10)),
    )


@settings(max_examples=60, deadline=None)
@given(policies())
def test_round_trip_property(policy):
    again = BatchPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy
    assert again.version == policy.version
    assert len(policy.version) == 12
    int(policy.version, 16)


# --- named policies and loading ----------------------------------------------


def test_every_named_policy_builds_under_its_name():
    names = get_policy_names()
    assert names == sorted(names)
    assert {"random", "margin", "entropy", "least_confidence", "buckets_mix"} <= set(
        names
    )
    for name in names:
        policy = get_policy(name)
        assert policy.name == name
        assert get_policy(name) == policy


def test_single_strategy_policies():
    random = get_policy("random")
    assert random.random_fraction == 1.0
    assert random.components == ()
    margin = get_policy("margin")
    assert margin.random_fraction == 0.0
    assert margin.components == (MixComponent("uncertain", "margin", 1.0),)
    buckets = get_policy("confidence_buckets")
    assert buckets.components[0].reason == "bucket"
    assert "cost_weighted" not in get_policy_names()
    expected = {
        "kcenter": "diverse",
        "vote_entropy": "committee",
        "error_driven": "failure",
        "density_weighted": "representative",
        "regression_variance": "uncertain",
    }
    for name, reason in expected.items():
        if name in get_strategy_names():
            assert get_policy(name).components[0].reason == reason


def test_mixed_named_policies():
    mix = get_policy("buckets_mix")
    assert mix.random_fraction == 0.1
    assert [(c.reason, c.strategy, c.share) for c in mix.components] == [
        ("bucket", "confidence_buckets", 0.5),
        ("uncertain", "margin", 0.4),
    ]


def test_default_policy():
    # Issue #10's blend: CLUE (weighted_clusters) first, the failure share, then
    # representative-within-uncertainty; bench/README.md has the table behind it.
    needs = {"weighted_clusters", "representative", "error_driven"}
    if not needs <= set(get_strategy_names()):
        pytest.skip("weighted_clusters, representative and error_driven are missing")
    default = get_policy("default")
    assert default.random_fraction == 0.1
    assert [(c.reason, c.strategy, c.share) for c in default.components] == [
        ("diverse", "weighted_clusters", 0.4),
        ("failure", "error_driven", 0.1),
        ("uncertain", "representative", 0.4),
    ]
    assert get_policy("balanced").random_fraction == 0.15


def test_default_policy_keeps_half_of_each_batch_normal_for_the_caps():
    # The CLUE share is recorded as "diverse" so that the per-annotator caps,
    # which count only CapRule.HARD_REASONS, see half of each batch as normal
    # (random + diverse), up from 30 % under the previous default.
    default = get_policy("default")
    normal = default.random_fraction + sum(
        c.share for c in default.components if c.reason not in CapRule.HARD_REASONS
    )
    assert normal == pytest.approx(0.5)
    assert "diverse" not in CapRule.HARD_REASONS


def test_unknown_policy_name():
    with pytest.raises(
        UnknownNameError, match=r"'nope' is not a policy; valid names: "
    ):
        get_policy("nope")


def test_load_policy_by_name():
    assert load_policy("margin") == get_policy("margin")


def test_load_policy_from_json(tmp_path):
    policy = fixed_policy(class_quotas={"a": 0.2}, caps=CapRule(max_hard_per_day=30))
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy.to_dict()), encoding="utf-8")
    assert load_policy(str(path)) == policy
    assert load_policy(path).version == policy.version


def test_load_policy_from_toml(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(
        """
name = "fixed"
random_fraction = 0.1

[[components]]
reason = "uncertain"
strategy = "margin"
share = 0.6

[[components]]
reason = "bucket"
strategy = "confidence_buckets"
share = 0.3
[components.params]
n_buckets = 5
""",
        encoding="utf-8",
    )
    loaded = load_policy(path)
    assert loaded == fixed_policy()
    assert loaded.version == "82be86b676e3"


def test_load_policy_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_policy(str(tmp_path / "missing.json"))
    message = str(info.value)
    assert "neither a policy name nor an existing file" in message
    assert "margin" in message and "random" in message
    assert "a path to a .json or .toml policy file" in message
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_policy(bad)
    yaml = tmp_path / "policy.yaml"
    yaml.write_text("components: []", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"must end in \.json or \.toml"):
        load_policy(yaml)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("random_fraction = 2.0\ncomponents = []\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"In policy file .*wrong.toml.*random_fraction"
    ):
        load_policy(wrong)


def test_policy_files_in_the_docs_load(tmp_path):
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "policy.md").read_text(
        encoding="utf-8"
    )
    loaded = {}
    for suffix in ("json", "toml"):
        block = text.split(f"```{suffix}\n", 1)[1].split("```", 1)[0]
        path = tmp_path / f"example.{suffix}"
        path.write_text(block, encoding="utf-8")
        loaded[suffix] = load_policy(path)
    assert loaded["json"].name == loaded["toml"].name == "support-tickets"
    assert loaded["toml"].caps.max_hard_per_day == 40
    assert loaded["json"].class_quotas == {"refund": 0.1}
    names = set(get_policy_names())
    for name in ("random", "default", "balanced", "buckets_mix"):
        assert f"| `{name}` |" in text
        assert name in names or name in {"default", "balanced"}
