"""Parquet pools read in chunks, never whole.

A :class:`ParquetPool` is a list of Parquet files (a path, a glob, or an fsspec
URL when the filesystem package is installed) with an id column and either
feature columns or one text column. Rows are numbered 0.. in file order (files
sorted by name), which is the global row position two-stage selection keys
its random choices on.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from labelwise.exceptions import ConfigError, InvalidInputError

__all__ = ["ParquetPiece", "ParquetPool", "expand_paths"]


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _filesystem(path: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a URL."""
    try:
        import fsspec
    except ImportError as exc:
        raise ConfigError(
            f"Reading {path!r} needs fsspec and the package of its filesystem, "
            "which are not installed.",
            hint="pip install fsspec (and e.g. s3fs or gcsfs), or copy the files "
            "to a local folder.",
        ) from exc
    fs, inner = fsspec.core.url_to_fs(path)
    return fs, str(inner)


def expand_paths(path_or_glob: str) -> list[str]:
    """The sorted Parquet files a path, folder or glob names (local or fsspec URL).

    Raises
    ------
    InvalidInputError
        If nothing matches.
    """
    text = str(path_or_glob)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if _is_url(text):
        fs, inner = _filesystem(text)
        protocol = text.split("://", 1)[0]
        found = sorted(fs.glob(inner)) if glob.has_magic(inner) else [inner]
        paths = [f"{protocol}://{p}" if "://" not in p else p for p in found]
    elif os.path.isdir(text):
        paths = sorted(glob.glob(os.path.join(text, "*.parquet")))
    elif glob.has_magic(text):
        paths = sorted(glob.glob(text))
    else:
        paths = [text] if os.path.exists(text) else []
    if not paths:
        raise InvalidInputError(
            f"No Parquet file matches {path_or_glob!r}.",
            hint="Pass an existing .parquet file, a folder of them, or a glob such "
            "as 'data/pool-*.parquet' (quoted, so the shell leaves it alone).",
        )
    return paths


def _open(path: str) -> Any:
    import pyarrow.parquet as pq

    if _is_url(path):
        fs, inner = _filesystem(path)
        return pq.ParquetFile(fs.open(inner, "rb"))
    return pq.ParquetFile(path)


@dataclass(frozen=True)
class ParquetPiece:
    """One row group of one file: a Dask task's share of the pool."""

    path: str
    row_group: int
    offset: int
    n_rows: int


@dataclass(frozen=True)
class ParquetPool:
    """Parquet files read as one pool (see the module docstring).

    Build it with :meth:`open`, which checks every file's schema (metadata
    only) and counts the rows.
    """

    paths: tuple[str, ...]
    id_column: str
    feature_columns: tuple[str, ...] = ()
    text_column: str | None = None
    row_counts: tuple[int, ...] = ()

    @classmethod
    def open(
        cls,
        path_or_glob: str | Sequence[str],
        *,
        id_column: str,
        feature_columns: Sequence[str] = (),
        text_column: str | None = None,
    ) -> ParquetPool:
        """Resolve the files and check they hold the columns named.

        Raises
        ------
        ConfigError
            If neither feature columns nor a text column is given.
        InvalidInputError
            If no file matches, or a file lacks a column.
        """
        if not feature_columns and not text_column:
            raise ConfigError(
                "A Parquet pool needs feature columns or a text column. Got neither.",
                hint="Pass --features a,b,c or --text-column text.",
            )
        if isinstance(path_or_glob, str):
            paths = expand_paths(path_or_glob)
        else:
            paths = [p for spec in path_or_glob for p in expand_paths(spec)]
        wanted = [id_column, *feature_columns, *([text_column] if text_column else [])]
        counts = []
        for path in paths:
            meta = _open(path)
            names = set(meta.schema_arrow.names)
            missing = [c for c in wanted if c not in names]
            if missing:
                raise InvalidInputError(
                    f"Parquet file {path!r} lacks column(s) "
                    f"{', '.join(map(repr, missing))}; it has "
                    f"{', '.join(sorted(names))}.",
                    hint="Fix --id-column, --features or --text-column, or the file.",
                )
            counts.append(int(meta.metadata.num_rows))
        return cls(
            paths=tuple(paths),
            id_column=id_column,
            feature_columns=tuple(feature_columns),
            text_column=text_column,
            row_counts=tuple(counts),
        )

    @property
    def n_rows(self) -> int:
        """Rows over all files."""
        return sum(self.row_counts)

    @property
    def columns(self) -> list[str]:
        """The columns a round reads: the id, then features or text."""
        extra = [self.text_column] if self.text_column else []
        return [self.id_column, *self.feature_columns, *extra]

    def pieces(self) -> list[ParquetPiece]:
        """One piece per row group, with its global row offset (metadata only)."""
        out = []
        offset = 0
        for path in self.paths:
            meta = _open(path).metadata
            for group in range(meta.num_row_groups):
                rows = int(meta.row_group(group).num_rows)
                out.append(ParquetPiece(path, group, offset, rows))
                offset += rows
        return out

    def iter_tables(self, chunk_size: int) -> Iterator[tuple[int, Any]]:
        """``(offset, pyarrow.Table)`` of at most ``chunk_size`` rows, in order."""
        import pyarrow as pa

        offset = 0
        for path in self.paths:
            for batch in _open(path).iter_batches(
                batch_size=chunk_size, columns=self.columns
            ):
                yield offset, pa.Table.from_batches([batch])
                offset += batch.num_rows

    def iter_piece(
        self, piece: ParquetPiece, chunk_size: int
    ) -> Iterator[tuple[int, Any]]:
        """``(offset, table)`` chunks of one piece (what a Dask task reads)."""
        import pyarrow as pa

        offset = piece.offset
        for batch in _open(piece.path).iter_batches(
            batch_size=chunk_size, row_groups=[piece.row_group], columns=self.columns
        ):
            yield offset, pa.Table.from_batches([batch])
            offset += batch.num_rows

    def take(self, positions: Any) -> list[dict[str, Any]]:
        """The rows at global ``positions`` as dicts, in that order.

        Reads only the row groups that hold them (what a round materialises).
        """
        import numpy as np

        wanted = np.asarray(positions, dtype=np.int64)
        found: dict[int, dict[str, Any]] = {}
        for piece in self.pieces():
            stop = piece.offset + piece.n_rows
            inside = wanted[(wanted >= piece.offset) & (wanted < stop)]
            if inside.size == 0:
                continue
            table = _open(piece.path).read_row_group(
                piece.row_group, columns=self.columns
            )
            local = np.unique(inside) - piece.offset
            for pos, row in zip(
                (local + piece.offset).tolist(),
                table.take(local).to_pylist(),
                strict=True,
            ):
                found[pos] = row
        missing = [int(p) for p in wanted if int(p) not in found]
        if missing:
            raise InvalidInputError(
                f"The pool has no row at position(s) {missing[:5]} (it has "
                f"{self.n_rows} rows).",
                hint="The files changed since the batch was chosen; run the "
                "round again.",
            )
        return [found[int(p)] for p in wanted]
