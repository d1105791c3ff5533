"""Final labels from several raw labels: majority vote and Dawid–Skene EM."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import logsumexp

from labelwise._typing import FloatArray, RandomState
from labelwise._validation import check_in_options, check_int, check_interval, check_rng
from labelwise.quality._agreement import EncodedLabels, encode_labels

__all__ = ["DawidSkeneResult", "dawid_skene", "majority_vote"]

_TIES = ("abstain", "first", "random")


def _label_frame(
    codes: EncodedLabels,
    winner: np.ndarray,
    confidence: FloatArray,
    method: str,
    abstained: np.ndarray | None = None,
) -> pd.DataFrame:
    labels = pd.Series(codes.classes.take(winner), dtype=codes.classes.dtype)
    if abstained is not None and abstained.any():
        labels = labels.astype(object).where(~abstained, None)
    return pd.DataFrame(
        {
            "item": codes.items,
            "label": labels.to_numpy(),
            "confidence": confidence,
            "method": method,
            "n_votes": np.bincount(codes.item, minlength=len(codes.items)),
        }
    )


def majority_vote(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    annotator: str = "annotator",
    label: str = "label",
    tie: str = "random",
    rng: RandomState = None,
) -> pd.DataFrame:
    """The most voted label of each item, with its share of the votes.

    Parameters
    ----------
    frame : DataFrame, shape (n_labels, ...)
        Long-format labels (one row per raw label).
    item, annotator, label : str
        Column names.
    tie : {"random", "first", "abstain"}
        Among tied labels: pick one at random (with ``rng``), pick the first in
        sorted label order, or give no label (missing, NA).
    rng : numpy.random.Generator, int or None
        Randomness for ``tie="random"``.

    Returns
    -------
    DataFrame, shape (n_items, 5)
        Columns ``item``, ``label``, ``confidence`` (share of the item's votes
        for the label), ``method`` (``"majority"``) and ``n_votes``, in order
        of first appearance of the items.
    """
    check_in_options(tie, param="tie", owner="majority_vote", options=_TIES)
    generator = check_rng(rng)
    codes = encode_labels(
        frame, item=item, annotator=annotator, label=label, owner="majority_vote"
    )
    counts = codes.counts()
    top = counts.max(axis=1, keepdims=True)
    tied = counts == top
    if tie == "random":
        noise = generator.random(counts.shape)
        winner = np.argmax(np.where(tied, noise, -1.0), axis=1)
    else:
        winner = np.argmax(tied, axis=1)
    confidence = top[:, 0] / counts.sum(axis=1)
    abstained = tied.sum(axis=1) > 1 if tie == "abstain" else None
    return _label_frame(codes, winner, confidence, "majority", abstained)


@dataclass(frozen=True)
class DawidSkeneResult:
    """Output of :func:`dawid_skene`.

    Attributes
    ----------
    labels : DataFrame, shape (n_items, 5)
        ``item``, ``label`` (posterior mode), ``confidence`` (its posterior
        probability), ``method`` (``"dawid-skene"``), ``n_votes``.
    posteriors : ndarray, shape (n_items, n_classes)
        Class posterior of every item.
    classes : Index, shape (n_classes,)
        The labels, sorted.
    priors : ndarray, shape (n_classes,)
        Estimated class priors.
    annotators : Index, shape (n_annotators,)
        Annotator ids, in the order of ``confusion``.
    confusion : ndarray, shape (n_annotators, n_classes, n_classes)
        ``confusion[a, j, l]``: probability that annotator ``a`` says ``l``
        when the truth is ``j`` (rows sum to 1).
    n_iter : int
        EM iterations run.
    converged : bool
        Whether the log-likelihood settled (relative change below ``tol``)
        within ``max_iter`` iterations.
    log_likelihood : float
        Log-likelihood of the votes under the final parameters.
    """

    labels: pd.DataFrame = field(repr=False)
    posteriors: FloatArray = field(repr=False)
    classes: pd.Index
    priors: FloatArray
    annotators: pd.Index = field(repr=False)
    confusion: FloatArray = field(repr=False)
    n_iter: int
    converged: bool
    log_likelihood: float


def dawid_skene(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    annotator: str = "annotator",
    label: str = "label",
    max_iter: int = 100,
    tol: float = 1e-6,
    init: str = "majority",
    smoothing: float = 0.01,
) -> DawidSkeneResult:
    """Dawid–Skene EM over per-annotator confusion matrices.

    Every step is two sparse products over the ``(items, annotators × classes)``
    vote matrix: the M-step turns item posteriors ``T`` (items × classes) into
    confusion counts (annotators × classes × classes), the E-step turns log
    confusion matrices back into log posteriors. There is no loop over items.

    Parameters
    ----------
    frame : DataFrame, shape (n_labels, ...)
        Long-format labels (one row per raw label).
    item, annotator, label : str
        Column names.
    max_iter : int
        Most EM iterations.
    tol : float
        Stop when the log-likelihood changes by less than ``tol`` times its
        absolute value between two iterations.
    init : {"majority"}
        Start from the vote shares of each item (Dawid & Skene's choice).
    smoothing : float
        Pseudo-count added to every confusion-matrix cell and class count, so
        that an unseen (true, given) pair is unlikely rather than impossible.

    Returns
    -------
    DawidSkeneResult

    References
    ----------
    .. [1] Dawid, A. P. & Skene, A. M. (1979). Maximum likelihood estimation of
       observer error-rates using the EM algorithm. Journal of the Royal
       Statistical Society C 28(1), 20–28.
    """
    owner = "dawid_skene"
    max_iter = check_int(max_iter, param="max_iter", owner=owner, low=1)
    tol = check_interval(tol, param="tol", owner=owner, low=0.0)
    check_in_options(init, param="init", owner=owner, options=("majority",))
    smoothing = check_interval(smoothing, param="smoothing", owner=owner, low=0.0)
    codes = encode_labels(
        frame, item=item, annotator=annotator, label=label, owner=owner
    )
    n, m, k = len(codes.items), len(codes.annotators), len(codes.classes)
    # votes[i, a * k + l]: how often annotator a said l on item i
    votes = sparse.csr_matrix(
        (
            np.ones(codes.item.shape[0]),
            (codes.item, codes.annotator * k + codes.label),
        ),
        shape=(n, m * k),
    )
    counts = codes.counts()
    posteriors = counts / counts.sum(axis=1, keepdims=True)
    priors = np.full(k, 1.0 / k)
    confusion = np.full((m, k, k), 1.0 / k)
    converged = False
    n_iter = 0
    log_likelihood = -np.inf
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        # M-step: priors and confusion[a, j, l] from the posteriors
        priors = posteriors.sum(axis=0) + smoothing
        priors /= priors.sum()
        flat = np.asarray(votes.T @ posteriors)  # (m * k_given, k_true)
        confusion = flat.reshape(m, k, k).transpose(0, 2, 1) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step: log p(j) + sum over the item's votes of log confusion[a, j, l]
        log_conf = np.log(confusion).transpose(0, 2, 1).reshape(m * k, k)
        log_joint = np.log(priors) + np.asarray(votes @ log_conf)
        log_marginal = logsumexp(log_joint, axis=1, keepdims=True)
        posteriors = np.exp(log_joint - log_marginal)
        previous, log_likelihood = log_likelihood, float(log_marginal.sum())
        if abs(log_likelihood - previous) <= tol * abs(log_likelihood):
            converged = True
            break
    winner = np.argmax(posteriors, axis=1)
    confidence = posteriors[np.arange(n), winner]
    return DawidSkeneResult(
        labels=_label_frame(codes, winner, confidence, "dawid-skene"),
        posteriors=posteriors,
        classes=codes.classes,
        priors=priors,
        annotators=codes.annotators,
        confusion=confusion,
        n_iter=n_iter,
        converged=converged,
        log_likelihood=log_likelihood,
    )
