"""The score cache: a model's pool probabilities, kept beside the database (#8).

One Parquet file per (project, model version) under the data folder
(``Settings.data_dir``, by default ``labelwise-data`` beside the SQLite file):
``project-<id>/scores/model-<version>.parquet``, a key column (``item_id`` for
a pool in the database, ``external_id`` for an external Parquet pool) and one
``p_<class>`` column per class. The file's metadata records the seed the model
was trained with: a model version names the labels and the model, and the seed
picks the calibration split, so only a round with the same version *and* seed
reuses the rows (and scores only the keys the file lacks). A new model version
always rescores the whole pool: its scores are new. The dashboard's histogram
reads the file of the latest round's model version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelwise.service.store.schema import ModelVersion, Project, Round

__all__ = [
    "EXTERNAL_KEY",
    "HISTOGRAM_BINS",
    "ITEM_KEY",
    "ScoreTable",
    "histogram_png",
    "lookup",
    "read_scores",
    "score_histogram",
    "score_path",
    "write_scores",
]

#: Key column of a pool kept in the database (int64 item ids).
ITEM_KEY = "item_id"
#: Key column of an external Parquet pool (its id column, as strings).
EXTERNAL_KEY = "external_id"
_META = b"labelwise"


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """The cached rows of one model: sorted unique ``keys`` and their ``probas``."""

    key: str
    keys: npt.NDArray[Any]
    probas: npt.NDArray[np.float64]
    classes: tuple[str, ...]
    seed: int
    version: str

    def __len__(self) -> int:
        return int(self.keys.size)


def score_path(data_dir: str | os.PathLike[str], project_id: int, version: str) -> Path:
    """``<data_dir>/project-<id>/scores/model-<version>.parquet``."""
    return (
        Path(data_dir) / f"project-{project_id}" / "scores" / f"model-{version}.parquet"
    )


def _as_keys(key: str, values: Any) -> npt.NDArray[Any]:
    if key == ITEM_KEY:
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in np.asarray(values, dtype=object)], dtype=str)


def read_scores(
    path: Path, *, key: str, classes: list[str], seed: int
) -> ScoreTable | None:
    """The file's rows if it was written by the same model (seed, classes, key)."""
    import pyarrow.parquet as pq

    if not path.exists():
        return None
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_META, b"{}"))
    columns = [f"p_{c}" for c in classes]
    if (
        meta.get("seed") != seed
        or meta.get("classes") != list(classes)
        or key not in table.column_names
        or any(c not in table.column_names for c in columns)
    ):
        return None
    keys = _as_keys(key, table.column(key).to_numpy(zero_copy_only=False))
    probas = np.column_stack(
        [table.column(c).to_numpy(zero_copy_only=False) for c in columns]
    ).astype(np.float64, copy=False)
    return ScoreTable(key, keys, probas, tuple(classes), seed, str(meta["version"]))


def lookup(
    cache: ScoreTable | None, keys: Any, n_classes: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(probas with the cached rows filled, NaN elsewhere; mask of missing rows)."""
    wanted = _as_keys(ITEM_KEY if cache is None else cache.key, keys)
    probas = np.full((wanted.size, n_classes), np.nan, dtype=np.float64)
    if cache is None or len(cache) == 0 or wanted.size == 0:
        return probas, np.ones(wanted.size, dtype=bool)
    pos = np.searchsorted(cache.keys, wanted)
    pos_clipped = np.minimum(pos, len(cache) - 1)
    found = cache.keys[pos_clipped] == wanted
    probas[found] = cache.probas[pos_clipped[found]]
    return probas, ~found


def write_scores(
    path: Path,
    *,
    key: str,
    keys: Any,
    probas: npt.NDArray[np.float64],
    classes: list[str],
    seed: int,
    version: str,
    previous: ScoreTable | None = None,
) -> ScoreTable:
    """Write ``keys`` → ``probas`` (with ``previous``'s other rows), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    new_keys = _as_keys(key, keys)
    rows = np.asarray(probas, dtype=np.float64)
    if previous is not None and len(previous):
        keep = ~np.isin(previous.keys, new_keys)
        new_keys = np.concatenate([previous.keys[keep], new_keys])
        rows = np.concatenate([previous.probas[keep], rows])
    order = np.argsort(new_keys, kind="stable")
    new_keys, rows = new_keys[order], rows[order]
    columns: dict[str, Any] = {
        key: pa.array(new_keys.tolist() if key != ITEM_KEY else new_keys)
    }
    for j, name in enumerate(classes):
        columns[f"p_{name}"] = pa.array(rows[:, j])
    meta = {"seed": seed, "classes": list(classes), "version": version, "key": key}
    table = pa.table(columns).replace_schema_metadata({_META: json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    pq.write_table(table, partial)
    partial.replace(path)
    return ScoreTable(key, new_keys, rows, tuple(classes), seed, version)


#: Bins of the dashboard's score histogram over [0, 1].
HISTOGRAM_BINS = 20


def score_histogram(
    *,
    session: Session,
    project: Project,
    data_dir: str | os.PathLike[str],
    bins: int = HISTOGRAM_BINS,
) -> dict[str, Any]:
    """Histogram of the top-class probability over the latest round's pool scores.

    Reads the score file of the latest round's model version (written by that
    round with the same seed); ``n_items`` is 0 when there is none (no round,
    a cold start, or no data folder when the round ran).
    """
    from labelwise.service.store.pools import get_pool_source

    edges = np.linspace(0.0, 1.0, bins + 1)
    latest = session.scalar(
        select(Round)
        .where(Round.project_id == project.id)
        .order_by(Round.number.desc())
        .limit(1)
    )
    version = None
    table: ScoreTable | None = None
    if latest is not None and latest.model_version_id is not None:
        row = session.get(ModelVersion, latest.model_version_id)
        version = None if row is None else row.version
    if latest is not None and version is not None and latest.seed is not None:
        external = get_pool_source(session=session, project=project) is not None
        table = read_scores(
            score_path(data_dir, project.id, version),
            key=EXTERNAL_KEY if external else ITEM_KEY,
            classes=list(project.labels),
            seed=latest.seed,
        )
    top = np.empty(0) if table is None else table.probas.max(axis=1)
    counts, _ = np.histogram(top, bins=edges)
    return {
        "project": project.name,
        "round_number": None if latest is None else latest.number,
        "model_version": version,
        "score": "max_probability",
        "n_items": int(top.size),
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
    }


def histogram_png(data: dict[str, Any]) -> bytes:
    """The histogram ``data`` (:func:`score_histogram`) drawn as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 2.6), dpi=100)
    axes = figure.add_subplot()
    edges = np.asarray(data["edges"])
    axes.bar(
        edges[:-1], data["counts"], width=np.diff(edges), align="edge", color="#3b6ea8"
    )
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("top-class probability")
    axes.set_ylabel("pool items")
    if data["n_items"]:
        axes.set_title(
            f"Round {data['round_number']}, model {data['model_version']}: "
            f"{data['n_items']} items",
            fontsize=10,
        )
    else:
        axes.set_title("No cached scores yet (run a round with a model)", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
