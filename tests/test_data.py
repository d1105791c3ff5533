import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelwise.data import load_dataset
from labelwise.exceptions import InvalidInputError, NotFoundError

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _frame(n=60):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "f1": rng.normal(size=n),
            "f2": rng.normal(size=n),
            "color": rng.choice(["red", "blue"], size=n),
            "label": rng.choice(["x", "y", "z"], size=n),
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_tabular_formats_with_seeded_stratified_split(tmp_path, suffix):
    frame = _frame()
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        path.write_text(
            "\n".join(json.dumps(r) for r in frame.to_dict(orient="records"))
        )
    else:
        frame.to_parquet(path)
    data = load_dataset(path, rng=0)
    assert data.kind == "tabular"
    assert list(data.X_train.columns) == ["f1", "f2", "color"]
    assert data.n_train + data.n_test == 60
    assert data.n_test == 12
    assert data.classes == ("x", "y", "z")
    again = load_dataset(path, rng=0)
    assert np.array_equal(again.y_test, data.y_test)


def test_split_column_and_text(tmp_path):
    frame = pd.DataFrame(
        {
            "text": ["good", "bad", "fine", "awful", "nice"],
            "label": ["pos", "neg", "pos", "neg", "pos"],
            "split": ["train", "train", "train", "validation", "validation"],
        }
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    data = load_dataset(path)
    assert data.kind == "text"
    assert list(data.X_train) == ["good", "bad", "fine"]
    # validation stands in for a missing test split
    assert list(data.y_test) == ["neg", "pos"]


def test_npz_images_are_flattened(tmp_path):
    path = tmp_path / "img.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.integers(0, 255, size=(30, 4, 4)), y=np.arange(30) % 3)
    data = load_dataset(path)
    assert data.X_train.shape[1] == 16
    assert data.classes == ("0", "1", "2")


def test_sklearn_builtin():
    data = load_dataset("sklearn:iris")
    assert data.n_train == 120
    assert len(data.classes) == 3
    with pytest.raises(NotFoundError, match="sklearn:digits"):
        load_dataset("sklearn:nope")


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_dataset(tmp_path / "missing.csv")
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(InvalidInputError, match="suffix"):
        load_dataset(bad)
    frame = _frame().rename(columns={"label": "target"})
    path = tmp_path / "nolabel.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match="no label column 'label'") as info:
        load_dataset(path)
    assert "target" in str(info.value)
    frame = _frame()
    frame.loc[3, "label"] = None
    path = tmp_path / "missing_label.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match="1 rows have no label"):
        load_dataset(path)


@pytest.mark.skipif(not DATASETS.exists(), reason="shared/datasets not beside the repo")
def test_shared_datasets_load():
    spam = load_dataset(DATASETS / "sms_spam.parquet")
    assert (spam.kind, spam.n_train, spam.n_test) == ("text", 4460, 1114)
    letter = load_dataset(DATASETS / "letter.parquet")
    assert (letter.kind, letter.n_train, len(letter.classes)) == ("tabular", 16000, 26)
