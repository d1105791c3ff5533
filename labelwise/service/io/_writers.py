"""Writers of exported rows: JSONL, CSV, Parquet, Label Studio JSON, Prodigy JSONL.

Every writer takes an iterator of :class:`ExportRow` pages and an open
destination and writes them as it goes, so memory holds one page at a time.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labelwise.exceptions import InvalidInputError
from labelwise.service.io._normalize import canonical_json

__all__ = [
    "PROVENANCE_COLUMNS",
    "ExportRow",
    "ExportSpec",
    "prodigy_hash",
    "write_rows",
]

#: Columns after the item's fields, in order, in every flat export.
PROVENANCE_COLUMNS = (
    "label",
    "label_method",
    "annotator",
    "annotated_at",
    "round",
    "reason",
    "policy_version",
)
#: The Label Studio control names of an export (see docs/import-export.md).
LS_FROM_NAME = "label"


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What a writer needs to know about the project."""

    name: str
    labels: tuple[str, ...]
    multi_label: bool
    text_field: str | None
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One item with its final label and that label's provenance."""

    external_id: str
    role: str
    fields: dict[str, Any]
    label: str | list[str] | None
    label_method: str | None
    annotator: str | None
    annotated_at: str | None
    round: int | None
    reason: str | None
    policy_version: str | None
    source: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        """The provenance columns as a dict (label included)."""
        return {name: getattr(self, name) for name in PROVENANCE_COLUMNS}

    def flat(self) -> dict[str, Any]:
        """external_id, role, the item's fields, then the provenance columns."""
        return {
            "external_id": self.external_id,
            "role": self.role,
            **self.fields,
            **self.provenance(),
        }


Pages = Iterable[list[ExportRow]]
Tick = Callable[[], None]


def prodigy_hash(value: Any) -> int:
    """A signed 32-bit hash of ``value``'s canonical JSON (Prodigy-style, not mmh3)."""
    digest = hashlib.sha256(canonical_json(value).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _epoch(moment: str | None) -> int | None:
    if moment is None:
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _flat_columns(spec: ExportSpec) -> list[str]:
    reserved = {"external_id", "role", *PROVENANCE_COLUMNS}
    clash = sorted(reserved & set(spec.fields))
    if clash:
        raise InvalidInputError(
            f"Project {spec.name!r} has fields named like export columns "
            f"({', '.join(clash)}); a flat export cannot hold both.",
            hint="Export with --format label-studio or prodigy, which keep the "
            "fields apart from the label.",
        )
    return ["external_id", "role", *spec.fields, *PROVENANCE_COLUMNS]


def _rows(pages: Pages, tick: Tick) -> Iterator[ExportRow]:
    for page in pages:
        for row in page:
            tick()
            yield row


def _jsonl(pages: Pages, path: Path, spec: ExportSpec, tick: Tick) -> int:
    _flat_columns(spec)
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for row in _rows(pages, tick):
            out.write(json.dumps(row.flat(), ensure_ascii=False) + "\n")
            count += 1
    return count


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "|".join(value)
    if isinstance(value, bool | dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _csv(pages: Pages, path: Path, spec: ExportSpec, tick: Tick) -> int:
    columns = _flat_columns(spec)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in _rows(pages, tick):
            flat = row.flat()
            writer.writerow([_csv_value(flat.get(name)) for name in columns])
            count += 1
    return count


def _arrow_schema(spec: ExportSpec, first: list[ExportRow]) -> Any:
    import pyarrow as pa

    def field_type(name: str) -> Any:
        values = [row.fields.get(name) for row in first]
        present = [v for v in values if v is not None]
        if all(isinstance(v, str) for v in present):
            return pa.string()
        if all(isinstance(v, bool) for v in present):
            return pa.bool_()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            return pa.int64()
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            return pa.float64()
        try:
            return pa.array(present).type
        except (pa.ArrowException, TypeError, ValueError):
            return pa.string()  # mixed types: the write reports the clash

    label = pa.list_(pa.string()) if spec.multi_label else pa.string()
    return pa.schema(
        [
            ("external_id", pa.string()),
            ("role", pa.string()),
            *[(name, field_type(name)) for name in spec.fields],
            ("label", label),
            ("label_method", pa.string()),
            ("annotator", pa.string()),
            ("annotated_at", pa.string()),
            ("round", pa.int64()),
            ("reason", pa.string()),
            ("policy_version", pa.string()),
        ]
    )


def _parquet(pages: Pages, path: Path, spec: ExportSpec, tick: Tick) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _flat_columns(spec)
    count = 0
    writer: Any = None
    schema: Any = None
    try:
        for page in pages:
            if schema is None:
                schema = _arrow_schema(spec, page)
                writer = pq.ParquetWriter(path, schema)
            try:
                table = pa.Table.from_pylist(
                    [row.flat() for row in page], schema=schema
                )
            except (pa.ArrowException, TypeError, ValueError) as error:
                raise InvalidInputError(
                    f"Cannot write project {spec.name!r} as Parquet: a field holds "
                    f"values of different types ({error}).",
                    hint="Export with --format jsonl, which keeps every JSON type.",
                ) from error
            writer.write_table(table)
            for _ in page:
                tick()
            count += len(page)
        if writer is None:  # no rows: still a valid, empty file
            pq.write_table(_arrow_schema(spec, []).empty_table(), path)
    finally:
        if writer is not None:
            writer.close()
    return count


def _ls_task(row: ExportRow, spec: ExportSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {"external_id": row.external_id, "role": row.role}
    meta.update({k: v for k, v in row.provenance().items() if k != "label"})
    if "ls_id" in row.source:
        meta["ls_id"] = row.source["ls_id"]
    task: dict[str, Any] = {"data": row.fields, "meta": meta}
    if row.label is not None:
        choices = row.label if isinstance(row.label, list) else [row.label]
        annotation: dict[str, Any] = {
            "result": [
                {
                    "from_name": LS_FROM_NAME,
                    "to_name": spec.text_field or spec.fields[0],
                    "type": "choices",
                    "value": {"choices": choices},
                }
            ],
            "was_cancelled": False,
        }
        if row.annotated_at is not None:
            annotation["created_at"] = row.annotated_at
        if row.annotator is not None and row.annotator.isdigit():
            annotation["completed_by"] = int(row.annotator)
        task["annotations"] = [annotation]
    if row.source.get("ls_predictions"):
        task["predictions"] = row.source["ls_predictions"]
    return task


def _label_studio(pages: Pages, path: Path, spec: ExportSpec, tick: Tick) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("[")
        for row in _rows(pages, tick):
            out.write(",\n" if count else "\n")
            out.write(json.dumps(_ls_task(row, spec), ensure_ascii=False))
            count += 1
        out.write("\n]\n")
    return count


def _prodigy_record(row: ExportRow, spec: ExportSpec) -> dict[str, Any]:
    kept = row.source.get("prodigy") or {}
    record: dict[str, Any] = {}
    if spec.text_field:
        record["text"] = row.fields.get(spec.text_field)
    record.update(
        {k: v for k, v in row.fields.items() if k != spec.text_field or k == "text"}
    )
    meta = {"id": row.external_id, "role": row.role}
    meta.update({k: v for k, v in row.provenance().items() if k != "label"})
    record["meta"] = meta
    options = [{"id": label, "text": label} for label in spec.labels]
    input_hash = kept.get("_input_hash")
    if not isinstance(input_hash, int):
        input_hash = prodigy_hash(row.fields)
    record["_input_hash"] = input_hash
    record["options"] = options
    if row.label is not None:
        record["accept"] = row.label if isinstance(row.label, list) else [row.label]
        record["answer"] = "accept"
    elif kept.get("answer") in ("reject", "ignore"):
        record["answer"] = kept["answer"]
        for key in ("label", "accept"):
            if key in kept:
                record[key] = kept[key]
    task_hash = kept.get("_task_hash")
    if not isinstance(task_hash, int) or row.label is not None:
        task_hash = prodigy_hash([input_hash, record.get("accept"), spec.labels])
    record["_task_hash"] = task_hash
    record["_annotator_id"] = row.annotator
    record["_timestamp"] = _epoch(row.annotated_at)
    return record


def _prodigy(pages: Pages, path: Path, spec: ExportSpec, tick: Tick) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for row in _rows(pages, tick):
            out.write(json.dumps(_prodigy_record(row, spec), ensure_ascii=False) + "\n")
            count += 1
    return count


_WRITERS: dict[str, Callable[[Pages, Path, ExportSpec, Tick], int]] = {
    "csv": _csv,
    "jsonl": _jsonl,
    "label-studio": _label_studio,
    "parquet": _parquet,
    "prodigy": _prodigy,
}


def write_rows(pages: Pages, path: Path, fmt: str, spec: ExportSpec, tick: Tick) -> int:
    """Write ``pages`` to ``path`` in ``fmt``; the number of rows written."""
    return _WRITERS[fmt](pages, path, spec, tick)
