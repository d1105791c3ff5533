"""Load labeled datasets for simulation and benchmarks.

Parquet, CSV, JSONL and NPZ files, and scikit-learn's bundled sets by the name
``sklearn:NAME`` (iris, wine, breast_cancer, digits). A file has a ``label``
column and optionally a ``split`` column (``train``/``test``; ``validation``
stands in for a missing ``test``); without one a seeded stratified split is
made. Items are either one text column or numeric/categorical feature columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from labelwise._typing import IndexArray, RandomState
from labelwise._validation import check_interval, check_rng
from labelwise.exceptions import InvalidInputError, NotFoundError

__all__ = ["Dataset", "load_dataset", "read_table", "take_rows"]

DataKind = Literal["text", "tabular"]
Features = pd.DataFrame | npt.NDArray[Any]

_SKLEARN_SETS = ("breast_cancer", "digits", "iris", "wine")
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".npz": "npz",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labeled dataset split into a pool (train) and a test set.

    Attributes
    ----------
    name : str
        Short name (the file stem, or ``sklearn:NAME``).
    kind : {"text", "tabular"}
        How items are represented.
    X_train, X_test : ndarray of str (text) or DataFrame / ndarray (tabular)
        Items of the pool and of the test split.
    y_train, y_test : ndarray of str
        Labels as strings.
    classes : tuple of str
        Every label, sorted.
    """

    name: str
    kind: DataKind
    X_train: Features
    y_train: npt.NDArray[np.str_]
    X_test: Features
    y_test: npt.NDArray[np.str_]
    classes: tuple[str, ...]

    @property
    def n_train(self) -> int:
        """Number of pool items."""
        return int(self.y_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test items."""
        return int(self.y_test.shape[0])

    def describe(self) -> str:
        """One line: name, kind, sizes and classes."""
        return (
            f"{self.name}: {self.kind}, {self.n_train:,} pool / {self.n_test:,} test "
            f"items, {len(self.classes)} classes"
        )


def take_rows(X: Features, rows: IndexArray) -> Features:
    """Rows ``rows`` of a feature container (DataFrame or array)."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows]
    return X[rows]


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    """Read a ``parquet``, ``csv`` or ``jsonl`` table; a clear error if it is broken."""
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "csv":
            return pd.read_csv(path)
        return pd.read_json(path, lines=True)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(
            f"Could not read {path} as {fmt}: {exc}",
            hint="Check the file is complete and in the format its suffix says.",
        ) from exc


def _load_npz(path: Path) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if not {"X", "y"} <= keys:
            raise InvalidInputError(
                f"{path} must hold arrays 'X' and 'y'. Got {sorted(keys)} instead.",
                hint="Save with numpy.savez(path, X=features, y=labels).",
            )
        X = archive["X"].reshape(archive["X"].shape[0], -1).astype(np.float64)
        y = archive["y"]
        split = archive["split"] if "split" in keys else None
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["label"] = y.astype(str)
    if split is not None:
        frame["split"] = split.astype(str)
    return frame


def _load_sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets

    if name not in _SKLEARN_SETS:
        raise NotFoundError(
            f"'sklearn:{name}' is not a bundled scikit-learn dataset; valid names: "
            f"{', '.join('sklearn:' + n for n in _SKLEARN_SETS)}."
        )
    bunch = getattr(datasets, f"load_{name}")()
    frame = pd.DataFrame(
        np.asarray(bunch.data, dtype=np.float64),
        columns=[f"x{i}" for i in range(bunch.data.shape[1])],
    )
    frame["label"] = np.asarray(bunch.target_names)[bunch.target].astype(str)
    return frame


def _read_any(source: str | Path) -> tuple[str, pd.DataFrame]:
    text = str(source)
    if text.startswith("sklearn:"):
        name = text.split(":", 1)[1]
        return text, _load_sklearn(name)
    path = Path(source)
    if not path.exists():
        raise NotFoundError(
            f"Dataset file {path} does not exist.",
            hint="Pass a .parquet, .csv, .jsonl or .npz file, or sklearn:digits.",
        )
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"Cannot tell the format of {path}: expected a suffix among "
            f"{', '.join(sorted(_SUFFIXES))}. Got {path.suffix!r} instead.",
            hint="Rename the file with its format's suffix.",
        )
    frame = _load_npz(path) if fmt == "npz" else read_table(path, fmt)
    return path.stem, frame


def _feature_columns(
    frame: pd.DataFrame, exclude: set[str], requested: list[str] | None
) -> list[str]:
    if requested:
        missing = [c for c in requested if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"Feature columns {missing} are not in the data. "
                f"Got columns {list(frame.columns)}.",
                hint="Check the spelling of --feature-columns.",
            )
        return requested
    columns = []
    for column in frame.columns:
        if column in exclude:
            continue
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            columns.append(column)
        elif pd.api.types.is_string_dtype(series) or series.dtype == object:
            sample = series.dropna().head(50)
            if sample.map(lambda v: isinstance(v, str)).all():
                columns.append(column)
    return columns


def _split(
    frame: pd.DataFrame,
    labels: npt.NDArray[np.str_],
    split_column: str,
    test_size: float,
    rng: np.random.Generator,
) -> tuple[IndexArray, IndexArray]:
    if split_column in frame.columns:
        split = frame[split_column].astype(str).str.lower().to_numpy()
        train = np.flatnonzero(split == "train")
        test = np.flatnonzero(split == "test")
        if test.size == 0:
            test = np.flatnonzero(split == "validation")
        if train.size and test.size:
            return train.astype(np.intp), test.astype(np.intp)
    from sklearn.model_selection import train_test_split

    index = np.arange(labels.shape[0], dtype=np.intp)
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 else None
    train, test = train_test_split(
        index,
        test_size=test_size,
        stratify=stratify,
        random_state=int(rng.integers(2**31 - 1)),
    )
    return np.sort(train).astype(np.intp), np.sort(test).astype(np.intp)


def load_dataset(
    source: str | Path,
    *,
    text_column: str | None = None,
    label_column: str = "label",
    split_column: str = "split",
    feature_columns: list[str] | None = None,
    test_size: float = 0.2,
    rng: RandomState = 0,
) -> Dataset:
    """Load a labeled dataset from a file or ``sklearn:NAME``.

    Parameters
    ----------
    source : str or Path
        A ``.parquet``, ``.csv``, ``.jsonl`` or ``.npz`` file (NPZ: arrays ``X``
        and ``y``, images flattened), or ``sklearn:iris|wine|breast_cancer|digits``.
    text_column : str, optional
        The text column; by default ``text`` when the data has one, otherwise
        the items are tabular.
    label_column, split_column : str
        Column names of the label and of the optional train/test split.
    feature_columns : list of str, optional
        Tabular feature columns; by default every numeric column and every
        string column other than the label, split and id-like list columns.
    test_size : float, default=0.2
        Share of rows held out when the data has no split column.
    rng : Generator, int or None, default=0
        Seeds the stratified split when one must be made.

    Returns
    -------
    Dataset
    """
    test_size = check_interval(
        test_size,
        param="test_size",
        owner="load_dataset",
        low=0,
        high=1,
        closed="neither",
    )
    generator = check_rng(rng)
    name, frame = _read_any(source)
    if label_column not in frame.columns:
        raise InvalidInputError(
            f"{name} has no label column {label_column!r}. "
            f"Got columns {list(frame.columns)}.",
            hint="Rename the label column to 'label' or name it with label_column.",
        )
    missing = frame[label_column].isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)[:5] + 1
        raise InvalidInputError(
            f"{name}: {int(missing.sum())} rows have no label (first rows: "
            f"{', '.join(map(str, rows))}).",
            hint="Drop unlabeled rows; they belong in the pool, not in a simulation.",
        )
    labels = frame[label_column].astype(str).to_numpy().astype(np.str_)
    if text_column is None and "text" in frame.columns and not feature_columns:
        text_column = "text"
    kind: DataKind
    X: Features
    if text_column is not None:
        if text_column not in frame.columns:
            raise InvalidInputError(
                f"{name} has no text column {text_column!r}. "
                f"Got columns {list(frame.columns)}.",
                hint="Pass the right --text-column.",
            )
        kind = "text"
        X = frame[text_column].fillna("").astype(str).to_numpy()
    else:
        kind = "tabular"
        columns = _feature_columns(frame, {label_column, split_column}, feature_columns)
        if not columns:
            raise InvalidInputError(
                f"{name} has no usable feature column besides {label_column!r}.",
                hint="Pass --text-column for text data, or add numeric columns.",
            )
        X = frame[columns].reset_index(drop=True)
    classes = tuple(sorted(set(labels.tolist())))
    if len(classes) < 2:
        raise InvalidInputError(
            f"{name} has {len(classes)} distinct label(s); a classifier needs 2 "
            "or more.",
            hint="Check the label column.",
        )
    train, test = _split(frame, labels, split_column, test_size, generator)
    return Dataset(
        name=name,
        kind=kind,
        X_train=take_rows(X, train),
        y_train=labels[train],
        X_test=take_rows(X, test),
        y_test=labels[test],
        classes=classes,
    )
