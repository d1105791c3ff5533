"""run_round on SQLite and PostgreSQL, with small slices of the demo dataset."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from labelwise.demo import DEMO_LABELS, load_demo
from labelwise.exceptions import ConfigError, PoolExhausted
from labelwise.policy import BatchPolicy, MixComponent, get_policy
from labelwise.service.loop import RoundSummary, run_round
from labelwise.service.store.engine import transaction
from labelwise.service.store.schema import (
    FinalLabel,
    Item,
    ModelVersion,
    Project,
    Round,
    Selection,
)

SUMMARY_KEYS = {
    "round_id",
    "round_number",
    "model_version",
    "policy_version",
    "policy",
    "mode",
    "selected",
    "counts_by_reason",
    "metrics",
}


@pytest.fixture(scope="module")
def demo():
    frame = load_demo()
    return frame[frame.split == "train"], frame[frame.split == "test"]


def seed_project(
    factory,
    demo,
    *,
    name="tickets",
    n_pool=60,
    n_labeled=0,
    n_validation=0,
    n_gold=0,
    n_failure=0,
    labeled_failures=0,
    only_label=None,
):
    """A text project: pool from the demo's train rows, other roles from test rows.

    The first ``n_labeled`` pool items and the first ``labeled_failures``
    failure items get final labels; validation items are all labeled.
    """
    train, test = demo
    if only_label is not None:
        train = train[train.label == only_label]
    pool = train.iloc[:n_pool]
    rest = test.iloc[: n_validation + n_gold + n_failure]
    roles = ["validation"] * n_validation + ["gold"] * n_gold + ["failure"] * n_failure
    with transaction(factory) as session:
        project = Project(
            name=name,
            labels=list(DEMO_LABELS),
            text_field="text",
            fields=[],
            settings={},
        )
        session.add(project)
        session.flush()
        rows = [
            {
                "project_id": project.id,
                "external_id": row.id,
                "role": role,
                "fields": {"text": row.text},
                "content_hash": row.id,
                "source": {},
                "gold_label": json.dumps(row.label) if role == "gold" else None,
            }
            for row, role in [(r, "pool") for r in pool.itertuples()]
            + list(zip(rest.itertuples(), roles, strict=True))
        ]
        if rows:
            session.execute(insert(Item), rows)
        both = pd.concat([pool, rest])
        truth = dict(zip(both.id, both.label, strict=True))
        items = session.execute(
            select(Item.id, Item.external_id, Item.role)
            .where(Item.project_id == project.id)
            .order_by(Item.id)
        ).all()
        labeled = [i for i in items if i.role == "pool"][:n_labeled]
        labeled += [i for i in items if i.role == "validation"]
        labeled += [i for i in items if i.role == "failure"][:labeled_failures]
        if labeled:
            session.execute(
                insert(FinalLabel),
                [
                    {
                        "item_id": i.id,
                        "project_id": project.id,
                        "label": json.dumps(truth[i.external_id]),
                        "method": "seed",
                    }
                    for i in labeled
                ],
            )
    return project.id


def do_round(factory, project_id, **kwargs) -> RoundSummary:
    with transaction(factory) as session:
        project = session.get(Project, project_id)
        return run_round(session=session, project=project, **kwargs)


def selections(factory, round_id):
    with transaction(factory) as session:
        return session.execute(
            select(
                Selection.item_id,
                Selection.reason,
                Selection.strategy,
                Selection.score,
                Selection.rank,
                Item.role,
                FinalLabel.label,
            )
            .join(Item, Item.id == Selection.item_id)
            .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
            .where(Selection.round_id == round_id)
            .order_by(Selection.rank)
        ).all()


def get_round(factory, round_id):
    with transaction(factory) as session:
        return session.get(Round, round_id)


def test_cold_start_without_labels_picks_random_then_diverse(session_factory, demo):
    project_id = seed_project(session_factory, demo, n_pool=60)
    summary = do_round(session_factory, project_id, batch_size=20, seed=3)
    assert summary.mode == "cold_start"
    assert summary.model_version is None
    assert summary.metrics == {}
    assert summary.round_number == 1
    assert summary.selected == 20
    # default: 10% random control slice first; without a model CLUE clusters
    # the pool unweighted (diverse) and takes representative's share too;
    # error_driven has no failures yet.
    assert summary.counts_by_reason == {"random": 2, "diverse": 18}
    row = get_round(session_factory, summary.round_id)
    assert row.mode == "cold_start"
    assert row.model_version_id is None
    assert row.seed == 3
    assert row.batch_size == 20
    assert row.policy_version == get_policy("default").version
    assert row.policy == get_policy("default").to_dict()
    assert row.counts_by_reason == summary.counts_by_reason
    picks = selections(session_factory, summary.round_id)
    assert [p.rank for p in picks] == list(range(1, 21))
    assert [p.strategy for p in picks] == ["random"] * 2 + ["weighted_clusters"] * 18
    assert all(p.score is None for p in picks[:2])
    assert all(p.score is not None and math.isfinite(p.score) for p in picks[2:])
    assert len({p.item_id for p in picks}) == 20


def test_cold_start_with_a_geometry_policy_picks_diverse_items(session_factory, demo):
    project_id = seed_project(session_factory, demo, n_pool=60)
    summary = do_round(
        session_factory, project_id, batch_size=20, seed=3, policy="balanced"
    )
    assert summary.mode == "cold_start"
    # balanced: 15% random (3 of 20); margin has no model, its share goes on
    # to k-center (diverse); error_driven has no failures yet.
    assert summary.counts_by_reason == {"random": 3, "diverse": 17}
    picks = selections(session_factory, summary.round_id)
    assert [p.reason for p in picks[:3]] == ["random"] * 3
    assert all(p.score is None for p in picks if p.reason == "random")
    assert all(
        p.score is not None and math.isfinite(p.score)
        for p in picks
        if p.reason == "diverse"
    )


@pytest.mark.parametrize(
    ("n_labeled", "only_label", "mode"),
    [(9, None, "cold_start"), (12, "card_arrival", "cold_start"), (10, None, "model")],
    ids=["too-few-labels", "one-class", "just-enough"],
)
def test_cold_start_until_enough_labels_of_two_classes(
    session_factory, demo, n_labeled, only_label, mode
):
    project_id = seed_project(
        session_factory, demo, n_pool=40, n_labeled=n_labeled, only_label=only_label
    )
    summary = do_round(session_factory, project_id, batch_size=10, seed=0)
    assert summary.mode == mode
    with transaction(session_factory) as session:
        versions = session.scalar(select(func.count()).select_from(ModelVersion))
    if mode == "cold_start":
        assert summary.model_version is None
        # No model: the control slice, then CLUE's unweighted clusters.
        assert summary.counts_by_reason == {"random": 1, "diverse": 9}
        assert versions == 0
    else:
        assert summary.model_version is not None
        assert "uncertain" in summary.counts_by_reason
        assert versions == 1


def test_trains_records_model_version_and_scores_picks(session_factory, demo):
    project_id = seed_project(
        session_factory, demo, n_pool=80, n_labeled=30, n_validation=20
    )
    summary = do_round(session_factory, project_id, batch_size=20, seed=1)
    assert summary.mode == "model"
    assert re.fullmatch(r"[0-9a-f]{12}", summary.model_version)
    assert set(summary.metrics) == {"accuracy", "macro_f1", "n_validation"}
    assert summary.metrics["n_validation"] == 20
    assert 0.0 <= summary.metrics["accuracy"] <= 1.0
    # default at batch 20: 2 random, then 8 diverse (CLUE), 2 failure, 8
    # uncertain (representative); without misclassified labels the failure
    # slots pass on to representative.
    counts = summary.counts_by_reason
    assert counts["random"] == 2
    assert counts["diverse"] == 8
    assert counts["uncertain"] + counts.get("failure", 0) == 10
    assert counts["uncertain"] >= 8
    with transaction(session_factory) as session:
        version = session.scalar(select(ModelVersion))
        assert version.version == summary.model_version
        assert version.n_labels == 30
        assert version.model_name == "text_logistic"
        assert re.fullmatch(r"[0-9a-f]{64}", version.labels_hash)
        assert version.calibration_method
        assert 0.0 <= version.calibration_error <= 1.0
        assert version.metrics == summary.metrics
    row = get_round(session_factory, summary.round_id)
    assert row.mode == "model"
    assert row.model_version_id == version.id
    picks = selections(session_factory, summary.round_id)
    assert len(picks) == summary.selected == 20
    for pick in picks:
        if pick.strategy in ("random", "random_fill"):
            assert pick.score is None
        else:
            assert pick.reason in {"uncertain", "diverse", "failure"}
            assert math.isfinite(pick.score)
    assert all(p.role == "pool" and p.label is None for p in picks)


def test_counts_by_reason_sum_to_selected(session_factory, demo):
    project_id = seed_project(
        session_factory, demo, n_pool=70, n_labeled=20, n_failure=3
    )
    summary = do_round(session_factory, project_id, batch_size=25, seed=2)
    assert sum(summary.counts_by_reason.values()) == summary.selected == 25
    assert summary.counts_by_reason.get("failure", 0) >= 1  # failures now exist
    row = get_round(session_factory, summary.round_id)
    assert sum(row.counts_by_reason.values()) == 25


@pytest.mark.parametrize("n_labeled", [0, 20], ids=["cold-start", "model"])
def test_only_unlabeled_pool_items_are_ever_selected(session_factory, demo, n_labeled):
    # 30 pool items, n_labeled of them labeled; the batch asks for more than
    # remain, so it takes every candidate and nothing else.
    project_id = seed_project(
        session_factory,
        demo,
        n_pool=30,
        n_labeled=n_labeled,
        n_validation=12,
        n_gold=4,
        n_failure=5,
        labeled_failures=3,
    )
    summary = do_round(session_factory, project_id, batch_size=50, seed=4)
    assert summary.selected == 30 - n_labeled
    picks = selections(session_factory, summary.round_id)
    assert {p.role for p in picks} == {"pool"}
    assert all(p.label is None for p in picks)
    with transaction(session_factory) as session:
        unlabeled = set(
            session.scalars(
                select(Item.id)
                .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
                .where(Item.role == "pool", FinalLabel.item_id.is_(None))
            )
        )
    assert {p.item_id for p in picks} == unlabeled


@pytest.mark.parametrize("n_labeled", [0, 25], ids=["cold-start", "model"])
def test_same_seed_same_data_same_selection(session_factory, demo, n_labeled):
    project_id = seed_project(
        session_factory, demo, n_pool=60, n_labeled=n_labeled, n_validation=10
    )
    first = do_round(session_factory, project_id, batch_size=15, seed=11)
    second = do_round(session_factory, project_id, batch_size=15, seed=11)
    other = do_round(session_factory, project_id, batch_size=15, seed=12)
    assert second.round_number == first.round_number + 1
    # The same labels give the same model version (its row is reused).
    assert second.model_version == first.model_version
    key = [
        (p.item_id, p.reason, p.strategy)
        for p in selections(session_factory, first.round_id)
    ]
    again = [
        (p.item_id, p.reason, p.strategy)
        for p in selections(session_factory, second.round_id)
    ]
    assert again == key
    assert [p[0] for p in selections(session_factory, other.round_id)] != [
        p[0] for p in key
    ]
    with transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == (
            1 if n_labeled else 0
        )


def test_new_labels_give_a_new_model_version(session_factory, demo):
    project_id = seed_project(session_factory, demo, n_pool=50, n_labeled=20)
    first = do_round(session_factory, project_id, batch_size=5, seed=0)
    with transaction(session_factory) as session:
        picked = session.scalars(
            select(Selection.item_id).where(Selection.round_id == first.round_id)
        ).all()
        session.execute(
            insert(FinalLabel),
            [
                {
                    "item_id": item_id,
                    "project_id": project_id,
                    "label": json.dumps("exchange_rate"),
                    "method": "single",
                }
                for item_id in picked
            ],
        )
    second = do_round(session_factory, project_id, batch_size=5, seed=0)
    assert second.model_version != first.model_version
    with transaction(session_factory) as session:
        counts = session.scalars(
            select(ModelVersion.n_labels).order_by(ModelVersion.id)
        ).all()
    assert counts == [20, 25]
    assert not {p.item_id for p in selections(session_factory, second.round_id)} & set(
        picked
    )


def test_metrics_need_validation_items(session_factory, demo):
    none = seed_project(session_factory, demo, name="none", n_labeled=15)
    few = seed_project(session_factory, demo, name="few", n_labeled=15, n_validation=5)
    assert do_round(session_factory, none, batch_size=5, seed=0).metrics == {}
    summary = do_round(session_factory, few, batch_size=5, seed=0)
    assert summary.metrics["n_validation"] == 5
    with transaction(session_factory) as session:
        errors = session.scalars(
            select(ModelVersion.calibration_error).order_by(ModelVersion.id)
        ).all()
    assert errors == [None, None]  # fewer than 10 labeled validation items


def test_empty_pool_raises_pool_exhausted_with_import_hint(session_factory, demo):
    empty = seed_project(session_factory, demo, name="empty", n_pool=0)
    done = seed_project(session_factory, demo, name="done", n_pool=12, n_labeled=12)
    with pytest.raises(PoolExhausted, match="it has no pool items") as caught:
        do_round(session_factory, empty)
    assert "labelwise import empty FILE --role pool" in caught.value.hint
    with pytest.raises(PoolExhausted, match="all 12 of its pool items"):
        do_round(session_factory, done)
    with transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Round)) == 0


def test_policy_by_object_and_file_and_random(session_factory, demo, tmp_path):
    project_id = seed_project(session_factory, demo, n_pool=40, n_labeled=15)
    diverse_only = BatchPolicy(
        components=(MixComponent("diverse", "kcenter", 1.0),),
        random_fraction=0.0,
        name="coverage",
    )
    summary = do_round(
        session_factory, project_id, batch_size=6, policy=diverse_only, seed=0
    )
    assert summary.policy == "coverage"
    assert summary.counts_by_reason == {"diverse": 6}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(diverse_only.to_dict()))
    from_file = do_round(session_factory, project_id, batch_size=6, policy=str(path))
    assert from_file.policy_version == diverse_only.version
    random = do_round(session_factory, project_id, batch_size=6, policy="random")
    assert random.counts_by_reason == {"random": 6}
    with pytest.raises(ConfigError, match="neither a policy name nor"):
        do_round(session_factory, project_id, policy="no-such-policy")


def test_bad_arguments_are_refused(session_factory, demo):
    project_id = seed_project(session_factory, demo, n_pool=10)
    with pytest.raises(ConfigError, match="'batch_size' parameter of run_round"):
        do_round(session_factory, project_id, batch_size=0)
    with pytest.raises(ConfigError, match="'seed' parameter of run_round"):
        do_round(session_factory, project_id, seed=-1)
    with pytest.raises(ConfigError, match="registered default models"):
        do_round(session_factory, project_id, model="bert")
    with pytest.raises(ConfigError, match="reads a table of fields"):
        do_round(session_factory, project_id, model="tabular_logistic")


def test_tabular_project_and_score_file(session_factory, tmp_path):
    rng = np.random.default_rng(0)
    with transaction(session_factory) as session:
        project = Project(
            name="tab", labels=["lo", "hi"], text_field=None, fields=["x", "kind"]
        )
        session.add(project)
        session.flush()
        x = rng.normal(size=60)
        session.execute(
            insert(Item),
            [
                {
                    "project_id": project.id,
                    "external_id": f"r{i}",
                    "role": "pool",
                    "fields": {"x": float(x[i]), "kind": "ab"[i % 2]},
                    "content_hash": str(i),
                }
                for i in range(60)
            ],
        )
        ids = session.scalars(select(Item.id).order_by(Item.id).limit(20)).all()
        session.execute(
            insert(FinalLabel),
            [
                {
                    "item_id": item_id,
                    "project_id": project.id,
                    "label": json.dumps("hi" if x[i] > 0 else "lo"),
                    "method": "seed",
                }
                for i, item_id in enumerate(ids)
            ],
        )
        project_id = project.id
    summary = do_round(
        session_factory, project_id, batch_size=10, seed=0, data_dir=tmp_path
    )
    assert summary.mode == "model"
    with transaction(session_factory) as session:
        assert session.scalar(select(ModelVersion.model_name)) == "tabular_logistic"
    scores = pd.read_parquet(
        tmp_path
        / f"project-{project_id}"
        / "scores"
        / f"model-{summary.model_version}.parquet"
    )
    assert list(scores.columns) == ["item_id", "p_lo", "p_hi"]
    assert len(scores) == 40
    np.testing.assert_allclose(scores[["p_lo", "p_hi"]].sum(axis=1), 1.0)


def test_summary_to_dict_keys(session_factory, demo):
    project_id = seed_project(session_factory, demo, n_pool=20)
    data = do_round(session_factory, project_id, batch_size=4, seed=0).to_dict()
    assert set(data) == SUMMARY_KEYS
    assert json.loads(json.dumps(data)) == data
