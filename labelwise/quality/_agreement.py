"""Inter-annotator agreement on long-format labels (item, annotator, label).

The chance-corrected statistics come from well-kept implementations: Fleiss'
κ from statsmodels, Krippendorff's α from the ``krippendorff`` package; the
per-pair Cohen's κ uses scikit-learn's formula, vectorised over every pair at
once (one call per pair is far too slow for hundreds of annotators) and tested
against :func:`sklearn.metrics.cohen_kappa_score` pair by pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelwise._typing import FloatArray
from labelwise.exceptions import InvalidInputError

__all__ = [
    "AgreementReport",
    "agreement_by",
    "agreement_report",
    "encode_labels",
    "explode_annotations",
]


def check_columns(frame: object, columns: dict[str, str], *, owner: str) -> None:
    """Raise :class:`InvalidInputError` naming the missing and the found columns."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(
            f"{owner} needs a pandas DataFrame in long format. "
            f"Got {type(frame).__name__} instead.",
            hint="Build one with pandas.DataFrame({'item': ..., 'annotator': ..., "
            "'label': ...}).",
        )
    missing = [name for name in columns.values() if name not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns)
        options = ", ".join(f"{key}=..." for key, name in columns.items())
        raise InvalidInputError(
            f"{owner} needs the column(s) {', '.join(map(repr, missing))}. "
            f"Got columns: {found or '(none)'}.",
            hint=f"Name your columns with {options}, or turn list columns into "
            "long format with labelwise.quality.explode_annotations().",
        )


@dataclass(frozen=True)
class EncodedLabels:
    """Integer codes of a long-format label table (one entry per raw label).

    Attributes
    ----------
    item, annotator, label : ndarray of int, shape (n_labels,)
        Codes into ``items``, ``annotators`` and ``classes``.
    items, annotators, classes : pandas.Index
        The distinct values; ``classes`` is sorted.
    """

    item: np.ndarray[Any, np.dtype[np.intp]]
    annotator: np.ndarray[Any, np.dtype[np.intp]]
    label: np.ndarray[Any, np.dtype[np.intp]]
    items: pd.Index
    annotators: pd.Index
    classes: pd.Index

    def counts(self) -> FloatArray:
        """Votes per item and class, shape ``(n_items, n_classes)``."""
        k = len(self.classes)
        flat = np.bincount(
            self.item * k + self.label, minlength=len(self.items) * k
        ).astype(np.float64)
        return flat.reshape(len(self.items), k)


def encode_labels(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    annotator: str = "annotator",
    label: str = "label",
    owner: str = "encode_labels",
) -> EncodedLabels:
    """Validate a long-format table and encode it as integer codes.

    Rows with a missing label are dropped (an annotator who did not label an
    item is simply absent). Returns an :class:`EncodedLabels`.
    """
    check_columns(
        frame, {"item": item, "annotator": annotator, "label": label}, owner=owner
    )
    kept = frame.loc[frame[label].notna(), [item, annotator, label]]
    if kept[[item, annotator]].isna().to_numpy().any():
        raise InvalidInputError(
            f"{owner} needs an item and an annotator on every labeled row. "
            f"Got missing values in {item!r} or {annotator!r}.",
            hint="Drop or fill those rows before computing agreement.",
        )
    label_codes, classes = pd.factorize(kept[label], sort=True)
    item_codes, items = pd.factorize(kept[item])
    annotator_codes, annotators = pd.factorize(kept[annotator])
    return EncodedLabels(
        item=item_codes.astype(np.intp),
        annotator=annotator_codes.astype(np.intp),
        label=label_codes.astype(np.intp),
        items=pd.Index(items),
        annotators=pd.Index(annotators),
        classes=pd.Index(classes),
    )


def _percent_agreement(counts: FloatArray) -> float | None:
    n = counts.sum(axis=1)
    rated = n >= 2
    if not rated.any():
        return None
    c, m = counts[rated], n[rated]
    share = (c * (c - 1)).sum(axis=1) / (m * (m - 1))
    return float(share.mean())


def _fleiss_kappa(counts: FloatArray) -> float | None:
    from statsmodels.stats.inter_rater import fleiss_kappa

    n = counts.sum(axis=1)
    if n.size == 0 or n.min() != n.max() or n[0] < 2:
        return None
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return None  # one class only: chance agreement is 1, κ is undefined
    return float(fleiss_kappa(counts, method="fleiss"))


def _krippendorff_alpha(counts: FloatArray) -> float | None:
    import krippendorff

    pairable = counts[counts.sum(axis=1) >= 2]
    if pairable.size == 0 or np.count_nonzero(pairable.sum(axis=0)) < 2:
        return None  # no pairable values, or one value only: α is undefined
    return float(
        krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal")
    )


def _pairwise_kappa(codes: EncodedLabels) -> pd.DataFrame:
    """Cohen's κ for every annotator pair that shares at least 2 items."""
    columns = ["annotator_a", "annotator_b", "n_items", "cohen_kappa"]
    k = len(codes.classes)
    long = pd.DataFrame(
        {"i": codes.item, "a": codes.annotator, "y": codes.label}
    ).drop_duplicates(["i", "a"], keep="last")
    pairs = long.merge(long, on="i", suffixes=("_a", "_b"))
    pairs = pairs[pairs["a_a"] < pairs["a_b"]]
    if pairs.empty:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=float if c == "cohen_kappa" else object)
                for c in columns
            }
        )
    m = len(codes.annotators)
    key = pairs["a_a"].to_numpy(np.int64) * m + pairs["a_b"].to_numpy(np.int64)
    pair_id, pair_keys = pd.factorize(key, sort=True)
    cell = (pair_id * k + pairs["y_a"].to_numpy()) * k + pairs["y_b"].to_numpy()
    confusion = np.bincount(cell, minlength=len(pair_keys) * k * k).astype(np.float64)
    confusion = confusion.reshape(len(pair_keys), k, k)
    n = confusion.sum(axis=(1, 2))
    keep = n >= 2
    confusion, n, pair_keys = confusion[keep], n[keep], np.asarray(pair_keys)[keep]
    observed = np.trace(confusion, axis1=1, axis2=2) / n
    expected = (confusion.sum(axis=2) * confusion.sum(axis=1)).sum(axis=1) / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(
            np.isclose(expected, 1.0), np.nan, (observed - expected) / (1 - expected)
        )
    return pd.DataFrame(
        {
            "annotator_a": codes.annotators.take(pair_keys // m),
            "annotator_b": codes.annotators.take(pair_keys % m),
            "n_items": n.astype(np.int64),
            "cohen_kappa": kappa,
        }
    )


@dataclass(frozen=True)
class AgreementReport:
    """Agreement figures of one label table; see :func:`agreement_report`.

    Attributes
    ----------
    n_items, n_annotators, n_labels : int
        Distinct items, distinct annotators and raw labels (rows).
    percent_agreement : float or None
        Mean over items with at least 2 labels of the share of agreeing
        label pairs.
    fleiss_kappa : float or None
        Fleiss' κ (statsmodels); None when items have different numbers of
        labels, or fewer than 2.
    krippendorff_alpha : float or None
        Krippendorff's α, nominal (``krippendorff`` package); handles missing
        labels. None when undefined (a single class, no pairable values).
    mean_pairwise_cohen_kappa : float or None
        Mean of Cohen's κ over annotator pairs sharing at least 2 items
        (pairs whose κ is undefined are left out).
    """

    n_items: int
    n_annotators: int
    n_labels: int
    percent_agreement: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    mean_pairwise_cohen_kappa: float | None
    pairs: pd.DataFrame = field(repr=False, compare=False)

    def pairwise_cohen_kappa(self) -> pd.DataFrame:
        """Per-pair table: ``annotator_a``, ``annotator_b``, ``n_items``,
        ``cohen_kappa`` (NaN where undefined)."""
        return self.pairs.copy()

    def to_dict(self) -> dict[str, int | float | None]:
        """The seven figures, JSON-ready (None for undefined statistics)."""
        return {
            "n_items": self.n_items,
            "n_annotators": self.n_annotators,
            "n_labels": self.n_labels,
            "percent_agreement": self.percent_agreement,
            "fleiss_kappa": self.fleiss_kappa,
            "krippendorff_alpha": self.krippendorff_alpha,
            "mean_pairwise_cohen_kappa": self.mean_pairwise_cohen_kappa,
        }


def agreement_report(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    annotator: str = "annotator",
    label: str = "label",
) -> AgreementReport:
    """Agreement statistics of a long-format label table.

    Parameters
    ----------
    frame : DataFrame, shape (n_labels, ...)
        One row per raw label. Not every annotator needs to label every item;
        rows with a missing label are ignored.
    item, annotator, label : str
        Column names.

    Returns
    -------
    AgreementReport

    Notes
    -----
    Every row is one vote: an annotator who labels an item twice counts twice
    in the percent agreement, Fleiss' κ and Krippendorff's α (which only depend
    on the votes per item) and once, with the last label, in Cohen's κ.

    References
    ----------
    .. [1] Fleiss, J. L. (1971). Measuring nominal scale agreement among many
       raters. Psychological Bulletin 76(5), 378–382.
    .. [2] Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
       University of Pennsylvania.
    .. [3] Cohen, J. (1960). A coefficient of agreement for nominal scales.
       Educational and Psychological Measurement 20(1), 37–46.
    """
    codes = encode_labels(
        frame, item=item, annotator=annotator, label=label, owner="agreement_report"
    )
    counts = codes.counts()
    pairs = _pairwise_kappa(codes)
    finite = pairs["cohen_kappa"].to_numpy(np.float64)
    finite = finite[np.isfinite(finite)]
    return AgreementReport(
        n_items=len(codes.items),
        n_annotators=len(codes.annotators),
        n_labels=int(codes.label.shape[0]),
        percent_agreement=_percent_agreement(counts),
        fleiss_kappa=_fleiss_kappa(counts),
        krippendorff_alpha=_krippendorff_alpha(counts),
        mean_pairwise_cohen_kappa=float(finite.mean()) if finite.size else None,
        pairs=pairs,
    )


def agreement_by(
    frame: pd.DataFrame,
    by: str | Sequence[str],
    *,
    item: str = "item",
    annotator: str = "annotator",
    label: str = "label",
) -> pd.DataFrame:
    """Agreement figures per group (selection reason, final label, week, …).

    Parameters
    ----------
    frame : DataFrame
        Long-format labels, as for :func:`agreement_report`.
    by : str or list of str
        Grouping column(s). Per selection reason: a ``reason`` column. Per
        week: ``frame.assign(week=frame["created_at"].dt.to_period("W"))``.
        Per label: join the item's final label first (for example from
        :func:`majority_vote`) — grouping by the raw label column itself would
        make every group agree trivially, so it is refused.

    Returns
    -------
    DataFrame
        One row per group, indexed by ``by``, with the columns of
        :meth:`AgreementReport.to_dict`.
    """
    keys = [by] if isinstance(by, str) else list(by)
    check_columns(
        frame,
        {"item": item, "annotator": annotator, "label": label}
        | {f"by[{i}]": key for i, key in enumerate(keys)},
        owner="agreement_by",
    )
    if label in keys:
        raise InvalidInputError(
            f"agreement_by cannot group by the raw label column {label!r}: every "
            "group would agree perfectly.",
            hint="Join each item's final label (labelwise.quality.majority_vote) "
            "as a new column and group by that.",
        )
    rows = {
        group: agreement_report(
            part, item=item, annotator=annotator, label=label
        ).to_dict()
        for group, part in frame.groupby(keys if len(keys) > 1 else keys[0])
    }
    result = pd.DataFrame.from_dict(rows, orient="index")
    result.index.names = keys
    return result


def explode_annotations(
    frame: pd.DataFrame,
    *,
    annotators: str = "annotators",
    annotations: str = "annotations",
    item: str = "item_id",
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """Turn aligned list columns (one row per item) into long format.

    Parameters
    ----------
    frame : DataFrame, shape (n_items, ...)
        One row per item; ``annotators[i]`` labelled ``annotations[i]``.
    annotators, annotations, item : str
        Column names.
    keep : list of str
        Other columns to carry along (repeated on each label row).

    Returns
    -------
    DataFrame, shape (n_labels, 3 + len(keep))
        Columns ``item``, ``annotator``, ``label`` and ``keep``, ready for
        :func:`agreement_report`.
    """
    keep = list(keep)
    check_columns(
        frame,
        {"item": item, "annotators": annotators, "annotations": annotations}
        | {f"keep[{i}]": key for i, key in enumerate(keep)},
        owner="explode_annotations",
    )
    clash = sorted({"item", "annotator", "label"} & set(keep))
    if clash:
        raise InvalidInputError(
            f"explode_annotations writes columns 'item', 'annotator' and 'label'; "
            f"keep must not name them. Got keep={keep!r}.",
            hint="Rename those columns before exploding.",
        )
    left = frame[annotators].map(_length)
    right = frame[annotations].map(_length)
    bad = np.flatnonzero(left.to_numpy() != right.to_numpy())
    if bad.size:
        first = bad[0]
        raise InvalidInputError(
            f"The list columns {annotators!r} and {annotations!r} must have the "
            f"same length on every row. Got {bad.size} rows that differ (row "
            f"{first}, item {frame[item].iloc[first]!r}: {left.iloc[first]} "
            f"annotators, {right.iloc[first]} annotations).",
            hint="Fix those rows in the source, or drop them before exploding.",
        )
    long = pd.DataFrame(
        {
            "item": frame[item].to_numpy(),
            "annotator": frame[annotators].map(_as_list).to_numpy(),
            "label": frame[annotations].map(_as_list).to_numpy(),
        }
        | {key: frame[key].to_numpy() for key in keep}
    )
    long = long.explode(["annotator", "label"], ignore_index=True)
    long = long[long["annotator"].notna()].reset_index(drop=True)
    return long.infer_objects()


def _length(value: object) -> int:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return 0
    if isinstance(value, str):
        return 1
    try:
        return len(value)  # type: ignore[arg-type]
    except TypeError:
        return 1


def _as_list(value: object) -> list[Any]:
    if _length(value) == 0:
        return []
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)
