"""Streaming readers: CSV, JSONL (and Prodigy), Parquet and Label Studio JSON.

A reader yields, in file order, either a :class:`RawRecord` (one decoded
record and its position) or a :class:`~labelwise.exceptions.RecordError` for
a record that cannot be decoded (invalid UTF-8, broken JSON, a truncated
file). Positions are 1-based lines for CSV (the header is line 1) and JSONL,
1-based rows for Parquet, the 0-based array index for a Label Studio JSON
array, and 0 for an error about the file as a whole.

CSV and JSONL are read as bytes, line by line, and decoded per line so that
an encoding error names its line; Parquet is read in record batches
(``iter_batches``); a Label Studio JSON array is parsed whole.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.exceptions import InvalidInputError, RecordError

__all__ = [
    "FORMATS",
    "IMPORT_FORMATS",
    "RawRecord",
    "RecordSource",
    "count_records",
    "detect_format",
    "type_name",
]

#: File formats that can be imported and exported.
FORMATS = ("csv", "jsonl", "parquet", "label-studio", "prodigy")
#: What ``--format`` accepts on import.
IMPORT_FORMATS = ("auto", *FORMATS)

_SUFFIXES = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "label-studio",
}
_PARQUET_BATCH = 4096


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One decoded record and where it is in the file (line, row or index)."""

    line: int
    data: dict[str, Any]


Read = RawRecord | RecordError


def type_name(value: object) -> str:
    """The JSON-ish name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    """json.loads that refuses NaN and Infinity (PostgreSQL JSON rejects them)."""
    return json.loads(text, parse_constant=_no_constant)


def _json_problem(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg}, column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error)


def _utf8_problem(raw: bytes, error: UnicodeDecodeError) -> str:
    bad = raw[error.start : error.start + 4]
    return (
        f"invalid UTF-8 at byte {error.start + 1} of the line ({bad!r}); "
        "save the file as UTF-8"
    )


def detect_format(path: Path) -> str:
    """The format of ``path`` from its suffix; ``.jsonl`` may turn out Prodigy."""
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"Cannot tell the format of {str(path)!r} from its suffix "
            f"{path.suffix or '(none)'!r}; expected .csv, .jsonl, .ndjson, .parquet "
            "or .json (Label Studio tasks).",
            hint="Pass the format: --format csv|jsonl|parquet|label-studio|prodigy.",
        )
    if fmt == "jsonl" and _looks_like_prodigy(path):
        return "prodigy"
    return fmt


def _looks_like_prodigy(path: Path) -> bool:
    """True when the first JSONL record has ``_input_hash`` or ``answer``."""
    with path.open("rb") as file:
        for raw in file:
            if not raw.strip():
                continue
            try:
                first = _loads(raw.decode("utf-8-sig"))
            except (ValueError, RecursionError):
                return False
            return isinstance(first, dict) and (
                "_input_hash" in first or "answer" in first
            )
    return False


class RecordSource:
    """The records of one file in one format; iterate it once per pass."""

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in FORMATS:
            raise InvalidInputError(
                f"Unknown format {fmt!r}; valid formats: {', '.join(IMPORT_FORMATS)}.",
                hint="Pass one of them with --format, or 'auto' to go by suffix.",
            )
        self.path = path
        self.format = fmt
        self.name = str(path)
        self._tasks: list[Read] | None = None

    def __iter__(self) -> Iterator[Read]:
        if self.format == "csv":
            return self._csv()
        if self.format == "parquet":
            return self._parquet()
        if self.format == "label-studio":
            return iter(self._label_studio())
        return self._jsonl()

    def count(self) -> int:
        """How many records (and unreadable records) the file has, cheaply."""
        if self.format == "parquet":
            try:
                import pyarrow.parquet as pq

                return int(pq.ParquetFile(self.path).metadata.num_rows)
            except Exception:  # the real read reports the problem
                return 0
        if self.format == "label-studio":
            return len(self._label_studio())
        if self.format == "csv":
            return sum(1 for _ in self._csv())
        with self.path.open("rb") as file:
            return sum(1 for raw in file if raw.strip())

    def _error(self, line: int, field: str, message: str) -> RecordError:
        return RecordError(self.name, line, field, message)

    # -- JSONL (and Prodigy) --------------------------------------------------

    def _jsonl(self) -> Iterator[Read]:
        with self.path.open("rb") as file:
            for number, raw in enumerate(file, 1):
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as error:
                    yield self._error(number, "encoding", _utf8_problem(raw, error))
                    continue
                try:
                    value = _loads(text)
                except (ValueError, RecursionError) as error:
                    cut = "" if raw.endswith(b"\n") else "; the file looks cut off here"
                    yield self._error(
                        number, "json", f"not valid JSON ({_json_problem(error)}){cut}"
                    )
                    continue
                if not isinstance(value, dict):
                    yield self._error(
                        number,
                        "json",
                        f"expected a JSON object per line, got {type_name(value)}",
                    )
                    continue
                yield RawRecord(number, value)

    # -- CSV --------------------------------------------------------------------

    def _csv(self) -> Iterator[Read]:
        bad: dict[int, str] = {}

        def lines() -> Iterator[str]:
            with self.path.open("rb") as file:
                for number, raw in enumerate(file, 1):
                    try:
                        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                    except UnicodeDecodeError as error:
                        bad[number] = _utf8_problem(raw, error)
                        text = raw.decode("utf-8", "replace")
                    yield text

        reader = csv.reader(lines(), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            yield self._error(0, "file", "the file is empty; expected a header line")
            return
        except csv.Error as error:
            yield self._error(1, "header", f"not valid CSV ({error})")
            return
        header_bad = [bad[n] for n in range(1, reader.line_num + 1) if n in bad]
        if header_bad:
            yield self._error(1, "header", header_bad[0])
            return
        problem = _header_problem(header)
        if problem:
            yield self._error(1, "header", problem)
            return
        previous = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield self._error(
                    previous + 1,
                    "csv",
                    f"not valid CSV ({error}); the file may be cut off or have an "
                    "unbalanced quote",
                )
                return
            start, previous = previous + 1, reader.line_num
            if not row:
                continue
            broken = [bad[n] for n in range(start, previous + 1) if n in bad]
            if broken:
                yield self._error(start, "encoding", broken[0])
                continue
            if len(row) != len(header):
                yield self._error(
                    start,
                    "csv",
                    f"expected {len(header)} values (one per header column), "
                    f"got {len(row)}",
                )
                continue
            yield RawRecord(start, dict(zip(header, row, strict=True)))

    # -- Parquet --------------------------------------------------------------

    def _parquet(self) -> Iterator[Read]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        failures = (pa.ArrowException, OSError, ValueError, OverflowError)
        try:
            parquet = pq.ParquetFile(self.path)
        except failures as error:
            yield self._error(
                0,
                "file",
                f"not a readable Parquet file ({error}); the file may be truncated "
                "or not Parquet at all",
            )
            return
        row = 0
        batches = parquet.iter_batches(batch_size=_PARQUET_BATCH)
        while True:
            try:
                batch = next(batches)
                records = batch.to_pylist()
            except StopIteration:
                return
            except failures as error:
                yield self._error(
                    row + 1,
                    "file",
                    f"cannot read the rows from {row + 1} on ({error}); the file may "
                    "be truncated or corrupt",
                )
                return
            for data in records:
                row += 1
                yield RawRecord(row, data)

    # -- Label Studio JSON --------------------------------------------------------

    def _label_studio(self) -> list[Read]:
        if self._tasks is None:
            self._tasks = list(self._parse_label_studio())
        return self._tasks

    def _parse_label_studio(self) -> Iterator[Read]:
        raw = self.path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw.count(b"\n", 0, error.start) + 1
            yield self._error(
                0,
                "file",
                f"invalid UTF-8 on line {line} (byte {error.start + 1} of the file); "
                "save the file as UTF-8",
            )
            return
        if not text.strip():
            yield self._error(0, "file", "the file is empty; expected a JSON array")
            return
        try:
            value = _loads(text)
        except (ValueError, RecursionError) as error:
            where = ""
            if isinstance(error, json.JSONDecodeError):
                where = f" at line {error.lineno} column {error.colno}"
                problem = error.msg
            else:
                problem = _json_problem(error)
            yield self._error(
                0,
                "file",
                f"not valid JSON{where} ({problem}); check that the file is "
                "complete (a cut-off export ends mid-array)",
            )
            return
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            yield self._error(
                0,
                "file",
                f"expected a JSON array of Label Studio tasks, got {type_name(value)}",
            )
            return
        for index, task in enumerate(value):
            if isinstance(task, dict):
                yield RawRecord(index, task)
            else:
                yield self._error(
                    index, "task", f"expected a task object, got {type_name(task)}"
                )


def _header_problem(header: list[str]) -> str | None:
    names = [name.strip() for name in header]
    if not any(names):
        return "the header has no column names"
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        return f"column names must be unique; repeated: {', '.join(duplicates)}"
    return None


def count_records(path: str | Path, format: str = "auto") -> int:
    """How many records ``path`` holds (for a progress bar); 0 when unreadable."""
    file = Path(path)
    fmt = detect_format(file) if format == "auto" else format
    try:
        return RecordSource(file, fmt).count()
    except OSError:
        return 0
