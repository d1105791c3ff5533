"""Parquet pools read in chunks, never whole.

A :class:`ParquetPool` is a list of Parquet files (a path, a folder, a glob, a
``file:///`` URL, or an fsspec URL when fsspec and the filesystem's package are
installed) with an id column and either
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


#: Prefixes of local ``file:`` URLs, read without fsspec.
_FILE_PREFIXES = ("file://localhost/", "file:///")


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith(_FILE_PREFIXES)


def _local_path(path: str) -> str:
    """``path`` without a ``file://`` or ``file://localhost`` prefix."""
    for prefix in _FILE_PREFIXES:
        if path.startswith(prefix):
            return "/" + path[len(prefix) :]
    return path


def _filesystem(path: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a URL.

    Raises
    ------
    ConfigError
        If fsspec, or the package of the URL's filesystem, is not installed, or
        fsspec knows no filesystem for the URL's scheme.
    """
    protocol = path.split("://", 1)[0]
    try:
        import fsspec
    except ImportError as exc:
        raise ConfigError(
            f"Reading {path!r} needs fsspec, which is not installed.",
            hint="pip install 'labelwise[scale]' (it brings fsspec), plus the "
            "package of the filesystem (e.g. s3fs, gcsfs, adlfs); or copy the "
            "files to a local folder.",
        ) from exc
    try:
        fs, inner = fsspec.core.url_to_fs(path)
    except ImportError as exc:
        # fsspec's message names the package, e.g. "Install s3fs to access S3".
        raise ConfigError(
            f"Reading {path!r} needs the package of fsspec's {protocol!r} "
            f"filesystem, which is not installed: {exc}.",
            hint="pip install the package that message names (s3fs for s3://, "
            "gcsfs for gs://, adlfs for az://), or copy the files to a local folder.",
        ) from exc
    except ValueError as exc:
        raise ConfigError(
            f"fsspec knows no filesystem for {protocol!r} URLs such as {path!r}.",
            hint="Use a scheme fsspec knows (s3://, gs://, az://, memory://, "
            "file:///abs/path) or a local path.",
        ) from exc
    return fs, str(inner)


def _expand_url(text: str) -> list[str]:
    """The sorted Parquet files an fsspec URL (file, folder or glob) names."""
    fs, inner = _filesystem(text)
    if glob.has_magic(inner):
        found = sorted(str(p) for p in fs.glob(inner))
    elif fs.isdir(inner):
        found = sorted(str(p) for p in fs.glob(inner.rstrip("/") + "/*.parquet"))
    elif fs.exists(inner):
        found = [inner]
    else:
        found = []
    protocol = text.split("://", 1)[0]
    return [p if "://" in p else f"{protocol}://{p}" for p in found]


def expand_paths(path_or_glob: str) -> list[str]:
    """The sorted Parquet files a path, folder or glob names (local or fsspec URL).

    ``file:///abs/path`` URLs are read as local paths (no fsspec needed); other
    URLs (``s3://bucket/pool-*.parquet``, ``memory://pool``) go through fsspec,
    which needs ``labelwise[scale]`` and the filesystem's package.

    Raises
    ------
    InvalidInputError
        If nothing matches.
    ConfigError
        If a URL needs fsspec or a filesystem package that is not installed.
    """
    text = _local_path(str(path_or_glob))
    if _is_url(text):
        paths = _expand_url(text)
    elif os.path.isdir(text):
        paths = sorted(glob.glob(os.path.join(text, "*.parquet")))
    elif glob.has_magic(text):
        paths = sorted(glob.glob(text))
    else:
        paths = [text] if os.path.exists(text) else []
    if not paths:
        raise InvalidInputError(
            f"No Parquet file matches {path_or_glob!r}.",
            hint="Pass an existing .parquet file, a folder of them, a glob such "
            "as 'data/pool-*.parquet' (quoted, so the shell leaves it alone), or "
            "an fsspec URL such as 's3://bucket/pool-*.parquet'.",
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
