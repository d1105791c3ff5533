import itertools
import warnings
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from labelwise.exceptions import InvalidInputError
from labelwise.quality import agreement_by, agreement_report, explode_annotations

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
TOL = 1e-9


def _load(name):
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return pd.read_parquet(path)


def _long_from_counts(counts):
    """Long labels from an (items, classes) count table; raters r0, r1, … per item."""
    rows = []
    for i, row in enumerate(counts):
        labels = np.repeat(np.arange(len(row)), row)
        rows += [(f"i{i}", f"r{r}", int(y)) for r, y in enumerate(labels)]
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


def _reference_pairwise(long):
    """Cohen's κ with sklearn, one call per annotator pair sharing ≥ 2 items."""
    last = long.drop_duplicates(["item", "annotator"], keep="last")
    by_annotator = {
        a: dict(zip(g["item"], g["label"], strict=True))
        for a, g in last.groupby("annotator")
    }
    pairs = set()
    for _, group in last.groupby("item"):
        pairs.update(itertools.combinations(sorted(group["annotator"]), 2))
    kappas = {}
    for a, b in sorted(pairs):
        shared = sorted(by_annotator[a].keys() & by_annotator[b].keys())
        if len(shared) < 2:
            continue
        y1 = [by_annotator[a][i] for i in shared]
        y2 = [by_annotator[b][i] for i in shared]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kappas[(a, b)] = cohen_kappa_score(y1, y2)
    return kappas


def _pair_table_as_dict(report):
    table = report.pairwise_cohen_kappa()
    return {
        tuple(sorted((a, b))): k
        for a, b, k in zip(
            table["annotator_a"],
            table["annotator_b"],
            table["cohen_kappa"],
            strict=True,
        )
    }


def _check_against_reference(frame, wide, long, *, reliability):
    report = agreement_report(explode_annotations(frame))
    counts = aggregate_raters(wide)[0]
    assert report.fleiss_kappa == pytest.approx(fleiss_kappa(counts), abs=TOL)
    expected_alpha = krippendorff.alpha(
        reliability_data=reliability, level_of_measurement="nominal"
    )
    assert report.krippendorff_alpha == pytest.approx(expected_alpha, abs=TOL)
    # percent agreement: share of agreeing pairs among the item's labels
    n = wide.shape[1]
    agree = sum((wide == c).sum(axis=1) * ((wide == c).sum(axis=1) - 1) for c in (0, 1))
    assert report.percent_agreement == pytest.approx(
        float(np.mean(agree / (n * (n - 1)))), abs=TOL
    )
    kappas = _reference_pairwise(long)
    ours = _pair_table_as_dict(report)
    assert ours.keys() == kappas.keys()
    for key, value in kappas.items():
        if np.isnan(value):
            assert np.isnan(ours[key])
        else:
            assert ours[key] == pytest.approx(value, abs=TOL)
    finite = [v for v in kappas.values() if not np.isnan(v)]
    assert report.mean_pairwise_cohen_kappa == pytest.approx(np.mean(finite), abs=TOL)
    assert report.n_items == len(frame)
    assert report.n_labels == wide.size
    assert report.n_annotators == long["annotator"].nunique()
    return report


def _raw_long(frame):
    return (
        frame[["item_id", "annotators", "annotations"]]
        .explode(["annotators", "annotations"], ignore_index=True)
        .rename(
            columns={
                "item_id": "item",
                "annotators": "annotator",
                "annotations": "label",
            }
        )
        .astype({"label": int})
    )


def test_hs_brexit_matches_reference_implementations():
    frame = _load("hs_brexit_multiannotator.parquet")
    wide = np.stack(frame["annotations"].to_numpy()).astype(int)
    long = _raw_long(frame)
    reliability = long.pivot(index="annotator", columns="item", values="label")
    report = _check_against_reference(
        frame, wide, long, reliability=reliability.to_numpy(dtype=float)
    )
    assert report.n_annotators == 6
    assert len(report.pairwise_cohen_kappa()) == 15


@pytest.mark.slow
def test_md_agreement_matches_reference_implementations():
    frame = _load("md_agreement_multiannotator.parquet")
    wide = np.stack(frame["annotations"].to_numpy()).astype(int)
    long = _raw_long(frame)
    # 5 raw labels per item. One annotator labelled one item twice, so an
    # annotator × item matrix cannot hold every raw label; nominal α depends
    # only on the values of each item, so the 5 label slots serve as coders.
    report = _check_against_reference(
        frame, wide, long, reliability=wide.T.astype(float)
    )
    assert report.n_annotators == 819


def test_missing_data_matches_krippendorff_reliability_matrix():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 60)
    rows = []
    for i, y in enumerate(truth):
        for a in range(5):
            if rng.random() < 0.6:
                label = y if rng.random() < 0.7 else rng.integers(0, 3)
                rows.append((i, f"ann{a}", int(label)))
    long = pd.DataFrame(rows, columns=["item", "annotator", "label"])
    report = agreement_report(long)
    reliability = long.pivot(index="annotator", columns="item", values="label")
    expected = krippendorff.alpha(
        reliability_data=reliability.to_numpy(dtype=float),
        level_of_measurement="nominal",
    )
    assert report.krippendorff_alpha == pytest.approx(expected, abs=TOL)
    assert report.fleiss_kappa is None  # raters per item vary
    ours = _pair_table_as_dict(report)
    reference = _reference_pairwise(long)
    assert ours.keys() == reference.keys()
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=TOL)
    assert report.n_labels == len(long)


def test_fleiss_1971_table_published_value():
    # Fleiss (1971): 10 subjects, 14 raters, 5 categories; κ = 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    report = agreement_report(_long_from_counts(table))
    assert report.fleiss_kappa == pytest.approx(0.20993, abs=5e-5)
    assert report.fleiss_kappa == pytest.approx(fleiss_kappa(table), abs=1e-12)
    assert report.n_items == 10
    assert report.n_labels == 140


def test_two_raters_hand_computed():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    long = pd.DataFrame(
        {
            "item": list(range(50)) * 2,
            "annotator": ["A"] * 50 + ["B"] * 50,
            "label": a + b,
        }
    )
    report = agreement_report(long)
    # p_o = 35/50 = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.2 / 0.5
    assert report.mean_pairwise_cohen_kappa == pytest.approx(0.4, abs=1e-12)
    assert report.percent_agreement == pytest.approx(0.7, abs=1e-12)
    # Scott's π: pooled yes 0.55, p_e = 0.55² + 0.45² = 0.505
    assert report.fleiss_kappa == pytest.approx(0.195 / 0.495, abs=1e-12)
    # α = 1 − D_o/D_e = 1 − 0.3 / (4950/9900)
    assert report.krippendorff_alpha == pytest.approx(0.4, abs=1e-12)
    pairs = report.pairwise_cohen_kappa()
    assert pairs[["annotator_a", "annotator_b", "n_items"]].values.tolist() == [
        ["A", "B", 50]
    ]


def test_to_dict_keys_and_undefined_statistics():
    long = pd.DataFrame(
        {"item": [1, 1, 2, 2], "annotator": ["a", "b", "a", "b"], "label": [0] * 4}
    )
    figures = agreement_report(long).to_dict()
    assert list(figures) == [
        "n_items",
        "n_annotators",
        "n_labels",
        "percent_agreement",
        "fleiss_kappa",
        "krippendorff_alpha",
        "mean_pairwise_cohen_kappa",
    ]
    assert figures["percent_agreement"] == 1.0
    assert figures["fleiss_kappa"] is None
    assert figures["krippendorff_alpha"] is None
    assert figures["mean_pairwise_cohen_kappa"] is None


def test_single_labels_give_no_statistics():
    long = pd.DataFrame({"item": [1, 2], "annotator": ["a", "b"], "label": [0, 1]})
    report = agreement_report(long)
    assert report.percent_agreement is None
    assert report.fleiss_kappa is None
    assert report.krippendorff_alpha is None
    assert report.pairwise_cohen_kappa().empty


def test_missing_labels_are_ignored():
    long = pd.DataFrame(
        {
            "item": [1, 1, 1, 2, 2],
            "annotator": ["a", "b", "c", "a", "b"],
            "label": ["x", "y", None, "x", "x"],
        }
    )
    report = agreement_report(long)
    assert report.n_labels == 4
    assert report.percent_agreement == pytest.approx(0.5)


def test_custom_column_names():
    long = pd.DataFrame({"doc": [1, 1], "who": ["a", "b"], "tag": ["x", "x"]})
    report = agreement_report(long, item="doc", annotator="who", label="tag")
    assert report.percent_agreement == 1.0


def test_missing_column_message_lists_found_columns():
    frame = pd.DataFrame({"item_id": [1], "worker": ["a"], "label": [0]})
    with pytest.raises(InvalidInputError) as info:
        agreement_report(frame)
    text = str(info.value)
    assert "'item', 'annotator'" in text
    assert "'item_id', 'worker', 'label'" in text
    assert "item=..." in text


def test_rejects_non_frames_and_unnamed_rows():
    with pytest.raises(InvalidInputError, match="DataFrame"):
        agreement_report([("a", "b", 1)])
    no_item = pd.DataFrame({"item": [None], "annotator": ["a"], "label": [0]})
    with pytest.raises(InvalidInputError, match="item and an annotator"):
        agreement_report(no_item)


def test_explode_annotations_aligned_and_keeps_columns():
    frame = pd.DataFrame(
        {
            "item_id": ["t1", "t2", "t3"],
            "annotators": [["a", "b"], np.array(["b", "c", "d"]), []],
            "annotations": [[1, 0], np.array([0, 0, 1]), []],
            "domain": ["x", "y", "z"],
        }
    )
    long = explode_annotations(frame, keep=["domain"])
    assert list(long.columns) == ["item", "annotator", "label", "domain"]
    assert long.values.tolist() == [
        ["t1", "a", 1, "x"],
        ["t1", "b", 0, "x"],
        ["t2", "b", 0, "y"],
        ["t2", "c", 0, "y"],
        ["t2", "d", 1, "y"],
    ]
    assert long["label"].dtype.kind == "i"


def test_explode_annotations_length_mismatch_names_the_row():
    frame = pd.DataFrame(
        {
            "item_id": ["t1", "t2"],
            "annotators": [["a", "b"], ["a", "b"]],
            "annotations": [[1, 0], [1]],
        }
    )
    with pytest.raises(InvalidInputError, match=r"row 1, item 't2': 2 annotators, 1"):
        explode_annotations(frame)
    with pytest.raises(InvalidInputError, match="keep must not name"):
        explode_annotations(frame.assign(label=1), keep=["label"])
    with pytest.raises(InvalidInputError, match="'votes'"):
        explode_annotations(frame, annotations="votes")


def test_agreement_by_groups_and_refuses_raw_label():
    long = pd.DataFrame(
        {
            "item": [1, 1, 2, 2, 3, 3],
            "annotator": ["a", "b"] * 3,
            "label": [0, 0, 0, 1, 1, 1],
            "reason": [
                "uncertain",
                "uncertain",
                "random",
                "random",
                "random",
                "random",
            ],
        }
    )
    table = agreement_by(long, by="reason")
    assert list(table.index) == ["random", "uncertain"]
    assert table.loc["random", "percent_agreement"] == 0.5
    assert table.loc["uncertain", "n_items"] == 1
    two = agreement_by(long.assign(week=1), by=["reason", "week"])
    assert two.index.names == ["reason", "week"]
    with pytest.raises(InvalidInputError, match="raw label column"):
        agreement_by(long, by="label")
    with pytest.raises(InvalidInputError, match="'week'"):
        agreement_by(long, by="week")


@st.composite
def label_tables(draw):
    n_items = draw(st.integers(2, 8))
    n_annotators = draw(st.integers(2, 4))
    n_classes = draw(st.integers(2, 3))
    rows = []
    for i in range(n_items):
        for a in range(n_annotators):
            if draw(st.booleans()) or a < 2:
                rows.append((f"i{i}", f"a{a}", draw(st.integers(0, n_classes - 1))))
    return pd.DataFrame(rows, columns=["item", "annotator", "label"]), n_classes


def _assert_same_figures(left, right):
    for key, value in left.items():
        if value is None:
            assert right[key] is None, key
        else:
            assert right[key] == pytest.approx(value, abs=TOL), key


@settings(max_examples=60, deadline=None)
@given(label_tables(), st.randoms(use_true_random=False))
def test_invariant_to_relabeling_classes(table, random):
    long, n_classes = table
    names = [f"class-{c}" for c in range(n_classes)]
    random.shuffle(names)
    relabeled = long.assign(label=long["label"].map(dict(enumerate(names))))
    _assert_same_figures(
        agreement_report(long).to_dict(), agreement_report(relabeled).to_dict()
    )


@settings(max_examples=60, deadline=None)
@given(label_tables(), st.randoms(use_true_random=False))
def test_invariant_to_permuting_items_and_rows(table, random):
    long, _ = table
    items = sorted(set(long["item"]))
    renamed = items.copy()
    random.shuffle(renamed)
    order = list(range(len(long)))
    random.shuffle(order)
    permuted = long.iloc[order].assign(
        item=lambda f: f["item"].map(dict(zip(items, renamed, strict=True)))
    )
    _assert_same_figures(
        agreement_report(long).to_dict(), agreement_report(permuted).to_dict()
    )
