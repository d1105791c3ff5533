import numpy as np
import pandas as pd
import pytest

from labelwise.exceptions import ConfigError, InvalidInputError
from labelwise.quality import dawid_skene, majority_vote


def _votes(rows):
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


TIED = _votes(
    [
        ("x", "a", "cat"),
        ("x", "b", "dog"),
        ("y", "a", "dog"),
        ("y", "b", "dog"),
        ("y", "c", "cat"),
    ]
)


def test_majority_vote_labels_confidence_and_method():
    result = majority_vote(TIED, tie="first")
    assert list(result.columns) == ["item", "label", "confidence", "method", "n_votes"]
    assert result["item"].tolist() == ["x", "y"]
    assert result["label"].tolist() == ["cat", "dog"]  # first in sorted order on a tie
    assert result["confidence"].tolist() == pytest.approx([0.5, 2 / 3])
    assert set(result["method"]) == {"majority"}
    assert result["n_votes"].tolist() == [2, 3]


def test_majority_vote_abstains_on_ties():
    result = majority_vote(TIED, tie="abstain")
    assert result["label"].isna().tolist() == [True, False]
    assert result["label"].iloc[1] == "dog"
    assert result["confidence"].tolist() == pytest.approx([0.5, 2 / 3])


def test_majority_vote_random_ties_follow_the_seed():
    many = pd.concat(
        [TIED.assign(item=TIED["item"] + str(k)) for k in range(40)], ignore_index=True
    )
    first = majority_vote(many, tie="random", rng=3)
    again = majority_vote(many, tie="random", rng=np.random.default_rng(3))
    assert first.equals(again)
    tied = first[first["item"].str.startswith("x")]["label"]
    assert set(tied) == {"cat", "dog"}  # both tied labels get picked
    clear = first[first["item"].str.startswith("y")]["label"]
    assert set(clear) == {"dog"}


def test_majority_vote_validates_parameters():
    with pytest.raises(ConfigError, match="'tie' parameter of majority_vote"):
        majority_vote(TIED, tie="coin")
    with pytest.raises(ConfigError, match="rng must be"):
        majority_vote(TIED, rng="seed")
    with pytest.raises(InvalidInputError, match="'worker'"):
        majority_vote(TIED, annotator="worker")


def test_majority_vote_keeps_integer_labels():
    votes = _votes([(1, "a", 3), (1, "b", 3), (2, "a", 5)])
    result = majority_vote(votes, tie="first")
    assert result["label"].tolist() == [3, 5]
    assert result["label"].dtype.kind == "i"


def _simulate(seed, n_items=400, n_classes=3):
    """Annotators with known confusion matrices: 2 experts, 3 noisy, 2 spammers."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(n_classes, size=n_items, p=[0.5, 0.3, 0.2])
    confusions = []
    for quality in [0.9, 0.85, 0.55, 0.5, 0.5]:
        m = np.full((n_classes, n_classes), (1 - quality) / (n_classes - 1))
        np.fill_diagonal(m, quality)
        confusions.append(m)
    confusions += [np.tile(rng.dirichlet(np.ones(n_classes)), (n_classes, 1))] * 2
    rows = []
    for a, m in enumerate(confusions):
        labelled = rng.random(n_items) < 0.8
        cum = m[truth].cumsum(axis=1)
        given = (rng.random(n_items)[:, None] > cum).sum(axis=1)
        rows += [
            (f"item{i}", f"ann{a}", int(given[i])) for i in np.flatnonzero(labelled)
        ]
    return _votes(rows), pd.Series(truth, index=[f"item{i}" for i in range(n_items)])


def _accuracy(result, truth):
    labels = result.set_index("item")["label"]
    return float((labels == truth[labels.index]).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_recovers_truth_at_least_as_well_as_majority(seed):
    votes, truth = _simulate(seed)
    ds = dawid_skene(votes)
    majority = majority_vote(votes, tie="random", rng=seed)
    assert _accuracy(ds.labels, truth) >= _accuracy(majority, truth)
    assert _accuracy(ds.labels, truth) > 0.85
    assert ds.converged
    assert 1 <= ds.n_iter <= 100
    assert ds.priors.sum() == pytest.approx(1.0)
    assert ds.confusion.shape == (7, 3, 3)
    assert np.allclose(ds.confusion.sum(axis=2), 1.0)
    expert = ds.confusion[list(ds.annotators).index("ann0")]
    assert np.diag(expert) == pytest.approx([0.9] * 3, abs=0.15)
    assert set(ds.labels["method"]) == {"dawid-skene"}
    assert np.allclose(ds.posteriors.sum(axis=1), 1.0)
    assert ds.labels["confidence"].between(1 / 3, 1).all()


def test_dawid_skene_does_not_mutate_input_and_is_deterministic():
    votes, _ = _simulate(5, n_items=50)
    before = votes.copy()
    first = dawid_skene(votes)
    second = dawid_skene(votes)
    assert votes.equals(before)
    assert first.labels.equals(second.labels)
    assert list(first.classes) == [0, 1, 2]


def test_dawid_skene_stops_at_max_iter():
    votes, _ = _simulate(6, n_items=60)
    result = dawid_skene(votes, max_iter=1, tol=0.0)
    assert result.n_iter == 1
    assert not result.converged


def test_dawid_skene_validates_parameters():
    with pytest.raises(ConfigError, match="'max_iter' parameter of dawid_skene"):
        dawid_skene(TIED, max_iter=0)
    with pytest.raises(ConfigError, match="'tol' parameter"):
        dawid_skene(TIED, tol=-1.0)
    with pytest.raises(ConfigError, match="'init' parameter"):
        dawid_skene(TIED, init="random")
    with pytest.raises(ConfigError, match="'smoothing' parameter"):
        dawid_skene(TIED, smoothing=-0.5)
