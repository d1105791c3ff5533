import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ttest_rel, wilcoxon

from labelwise.exceptions import ConfigError, InvalidInputError, UnknownNameError
from labelwise.metrics import (
    aulc,
    get_metric_names,
    labels_to_target,
    paired_gain,
    score_predictions,
)


def test_aulc_is_the_mean_of_the_curve():
    assert aulc([0.5, 0.7, 0.9]) == pytest.approx(0.7)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_aulc_lies_between_min_and_max(points):
    value = aulc(points)
    assert min(points) - 1e-12 <= value <= max(points) + 1e-12


def test_aulc_rejects_empty_and_nan():
    with pytest.raises(InvalidInputError, match="non-empty 1-D"):
        aulc([])
    with pytest.raises(InvalidInputError, match="finite"):
        aulc([0.5, float("nan")])


def test_labels_to_target_first_crossing():
    labels = [20, 40, 60, 80]
    scores = [0.5, 0.8, 0.79, 0.95]
    assert labels_to_target(labels, scores, 0.8) == 40
    assert labels_to_target(labels, scores, 0.9) == 80
    assert labels_to_target(labels, scores, 0.99) is None


def test_labels_to_target_needs_paired_lengths():
    with pytest.raises(InvalidInputError, match="same length"):
        labels_to_target([1, 2], [0.1], 0.5)


def test_paired_gain_matches_scipy():
    a = [0.81, 0.83, 0.80, 0.86, 0.84]
    b = [0.80, 0.80, 0.79, 0.82, 0.83]
    gain = paired_gain(a, b)
    assert gain.delta == pytest.approx(np.mean(np.subtract(a, b)))
    assert gain.p_value == pytest.approx(ttest_rel(a, b).pvalue)
    assert gain.to_dict()["aulc_delta"] == gain.delta


def test_paired_gain_edge_cases():
    assert paired_gain([0.5], [0.4]).p_value is None
    assert paired_gain([0.5, 0.6], [0.5, 0.6]).p_value == 1.0
    assert paired_gain([0.6, 0.7], [0.5, 0.6]).p_value == 0.0
    with pytest.raises(InvalidInputError, match="paired by seed"):
        paired_gain([0.5, 0.6], [0.5])


def test_paired_gain_wilcoxon_exact_value():
    # Five pairs, every difference positive: the exact two-sided p is 2 / 2**5.
    a = [0.81, 0.83, 0.80, 0.86, 0.84]
    b = [0.80, 0.80, 0.79, 0.82, 0.83]
    gain = paired_gain(a, b, method="wilcoxon")
    assert gain.p_value == pytest.approx(0.0625)
    assert gain.delta == pytest.approx(np.mean(np.subtract(a, b)))
    assert gain.n_pairs == 5


def test_paired_gain_wilcoxon_matches_scipy_with_mixed_signs():
    a = [0.70, 0.74, 0.69, 0.80, 0.77, 0.72, 0.75]
    b = [0.68, 0.75, 0.65, 0.74, 0.78, 0.66, 0.70]
    expected = wilcoxon(a, b, zero_method="zsplit").pvalue
    assert paired_gain(a, b, method="wilcoxon").p_value == pytest.approx(expected)
    # The t-test on the same pairs gives another p-value: the method is used.
    assert paired_gain(a, b).p_value != pytest.approx(expected)


def test_paired_gain_wilcoxon_edge_cases():
    assert paired_gain([0.5], [0.4], method="wilcoxon").p_value is None
    assert paired_gain([0.5, 0.6], [0.5, 0.6], method="wilcoxon").p_value == 1.0
    # Equal non-zero differences have ranks: unlike the t-test, p is not 0.
    assert paired_gain([0.6, 0.7], [0.5, 0.6], method="wilcoxon").p_value == 0.5
    with pytest.raises(InvalidInputError, match="paired by seed"):
        paired_gain([0.5, 0.6], [0.5], method="wilcoxon")
    with pytest.raises(ConfigError, match="'method' parameter of paired_gain"):
        paired_gain([0.5, 0.6], [0.5, 0.6], method="sign")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)  # scipy's first import is slow
@given(
    st.integers(2, 30).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(0, 1), min_size=n, max_size=n),
            st.lists(st.floats(0, 1), min_size=n, max_size=n),
        )
    )
)
def test_paired_gain_wilcoxon_is_symmetric(pair):
    a, b = pair
    forward = paired_gain(a, b, method="wilcoxon")
    backward = paired_gain(b, a, method="wilcoxon")
    assert forward.p_value is not None
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.delta == pytest.approx(-backward.delta)


def test_score_predictions_metrics():
    y = np.array(["a", "a", "b", "b"])
    p = np.array(["a", "a", "a", "b"])
    assert score_predictions(y, p, metric="accuracy") == pytest.approx(0.75)
    # F1: class a 2*(2/3*1)/(2/3+1)=0.8, class b 2*(1*0.5)/1.5=0.667
    assert score_predictions(y, p, metric="macro_f1") == pytest.approx(
        (0.8 + 2 / 3) / 2
    )
    assert get_metric_names() == ["accuracy", "macro_f1"]
    with pytest.raises(UnknownNameError, match="valid names: accuracy, macro_f1"):
        score_predictions(y, p, metric="auc")
