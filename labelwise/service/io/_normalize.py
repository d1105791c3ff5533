"""From a decoded record to an item candidate: external id, fields, labels, provenance.

A :class:`Normalizer` applies one project's rules (its text field or fields,
its label set, single- or multi-label) to the records of one file format and
returns either a :class:`Candidate` or the list of
:class:`~labelwise.exceptions.RecordError` that says what is wrong with it.
It never touches the database; duplicate ids are the importer's business.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from labelwise.exceptions import RecordError
from labelwise.service.io._readers import RawRecord, type_name
from labelwise.service.store.labels import encode_label
from labelwise.service.store.schema import Project

__all__ = [
    "Candidate",
    "Normalizer",
    "SeedAnnotation",
    "canonical_json",
    "content_hash",
]

_MAX_ID = 500
_MAX_DEPTH = 64
#: Generic columns read as provenance of the label (what `labelwise export` writes).
_PROVENANCE_COLUMNS = ("annotator", "annotated_at")
#: Top-level keys of a Label Studio task that are not the task's data.
_LS_TOP = ("id", "data", "annotations", "completions", "predictions", "meta")
#: Prodigy keys kept as Prodigy provenance rather than as extra data.
_PRODIGY_KEYS = ("answer", "label", "accept", "options")
#: The keys that carry labels, dropped when an import ignores labels.
_LABEL_KEYS = {
    "label-studio": ("annotations",),
    "prodigy": ("answer", "accept", "label"),
}


class _Unfit(Exception):
    """A value that cannot be stored; the message says why."""


@dataclass(frozen=True, slots=True)
class SeedAnnotation:
    """One imported label (JSON-encoded) and who gave it, when, from where."""

    label: str
    provenance: dict[str, Any]


@dataclass(slots=True)
class Candidate:
    """A valid record, ready to become an item (and its seed label)."""

    line: int
    external_id: str
    id_source: str
    explicit_id: bool
    fields: dict[str, Any]
    content_hash: str
    label: str | None
    confidence: float | None
    annotations: list[SeedAnnotation]
    source: dict[str, Any] = field(default_factory=dict)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the text that content hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(fields: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of an item's fields."""
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def _check_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = value[error.start]
        raise _Unfit(
            f"contains {bad!r}, which is not valid Unicode (a lone surrogate)"
        ) from None
    return value


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data (NaN → null, dates → ISO text) or _Unfit."""
    if depth > _MAX_DEPTH:
        raise _Unfit(f"is nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _check_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {
            _check_text(str(key)): _jsonable(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(item, depth + 1) for item in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        try:
            return _check_text(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise _Unfit("is binary data, not UTF-8 text") from None
    raise _Unfit(f"has the type {type(value).__name__}, which cannot be stored")


def _id_text(value: Any) -> str | None:
    """An external id as text; None when absent or empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Unfit("expected a string or an integer id, got a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        raise _Unfit(f"expected a string or an integer id, got {value!r}")
    if not isinstance(value, str):
        raise _Unfit(f"expected a string or an integer id, got {type_name(value)}")
    if not value.strip():
        return None
    if len(value) > _MAX_ID:
        raise _Unfit(f"is {len(value)} characters long; ids have at most {_MAX_ID}")
    if "\x00" in value:
        raise _Unfit("contains a NUL character")
    return _check_text(value)


def _annotator(value: Any) -> str | None:
    """Label Studio's ``completed_by`` (an id or a user object) as text."""
    if isinstance(value, dict):
        value = value.get("email") or value.get("username") or value.get("id")
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _resolve(labels: list[str]) -> tuple[str, float | None]:
    """The majority label (ties: the latest) and its share (None for one label)."""
    if len(labels) == 1:
        return labels[0], None
    counts = Counter(labels)
    best = max(counts.values())
    winner = next(label for label in reversed(labels) if counts[label] == best)
    return winner, best / len(labels)


class _Record:
    """Errors and consumed keys of the record being normalised."""

    def __init__(self, file: str, line: int) -> None:
        self.file = file
        self.line = line
        self.errors: list[RecordError] = []

    def error(self, field: str, message: str) -> None:
        self.errors.append(RecordError(self.file, self.line, field, message))


class Normalizer:
    """Turns the records of one file into candidates for one project."""

    def __init__(
        self,
        project: Project,
        fmt: str,
        file: str,
        id_field: str | None,
        ignore_labels: bool = False,
    ) -> None:
        self.project = project
        self.ignore_labels = ignore_labels
        self.format = fmt
        self.file = file
        self.id_field = id_field
        self.labels = tuple(str(label) for label in project.labels)
        self.label_set = frozenset(self.labels)
        self.multi_label = bool(project.multi_label)
        self.text_field = project.text_field
        self.item_fields: tuple[str, ...] = (
            (project.text_field,) if project.text_field else tuple(project.fields)
        )
        #: The record key that carries the label, for messages.
        self.label_field = {"label-studio": "annotations", "prodigy": "answer"}.get(
            fmt, "label"
        )

    # -- public ---------------------------------------------------------------

    def where(self, line: int) -> str:
        """How a position reads in a message: line 5, row 5, task [5]."""
        if self.format == "parquet":
            return f"row {line}"
        if self.format == "label-studio":
            return f"task [{line}]"
        return f"line {line}"

    def split_of(self, data: dict[str, Any]) -> str | None:
        """The record's ``split`` value as text, or None."""
        value: Any = data.get("split")
        if self.format == "label-studio" and isinstance(data.get("data"), dict):
            value = data["data"].get("split")
        elif self.format == "prodigy" and value is None:
            meta = data.get("meta")
            value = meta.get("split") if isinstance(meta, dict) else None
        return None if value is None else str(value)

    def __call__(self, raw: RawRecord) -> tuple[Candidate | None, list[RecordError]]:
        """The candidate of ``raw``, or None and what is wrong with it."""
        record = _Record(self.file, raw.line)
        if self.ignore_labels:
            dropped = _LABEL_KEYS.get(self.format, ("label",))
            raw = RawRecord(
                raw.line, {k: v for k, v in raw.data.items() if k not in dropped}
            )
        try:
            if self.format == "label-studio":
                candidate = self._label_studio(raw, record)
            elif self.format == "prodigy":
                candidate = self._prodigy(raw, record)
            else:
                candidate = self._generic(raw, record)
        except RecursionError:
            record.error("record", "is nested too deeply to store")
            candidate = None
        if record.errors:
            return None, record.errors
        return candidate, []

    # -- shared pieces ----------------------------------------------------------

    def _fields(
        self,
        data: dict[str, Any],
        record: _Record,
        prefix: str = "",
        text_fallback: str | None = None,
    ) -> tuple[dict[str, Any], set[str]]:
        """The item's fields from ``data`` and the keys they used."""
        fields: dict[str, Any] = {}
        used: set[str] = set()
        for name in self.item_fields:
            key = name
            if name not in data and text_fallback and name == self.text_field:
                key = text_fallback
            if key not in data:
                kind = "text field" if name == self.text_field else "field"
                present = ", ".join(sorted(map(str, data))[:12]) or "none"
                record.error(
                    prefix + name,
                    f"missing; the project's {kind} {name!r} must be in every "
                    f"record (keys here: {present})",
                )
                continue
            used.add(key)
            value = data[key]
            if name == self.text_field:
                if not isinstance(value, str):
                    record.error(
                        prefix + name,
                        f"expected a string (the item's text), got "
                        f"{type_name(value)}: {_short(value)}",
                    )
                    continue
                if not value.strip():
                    record.error(prefix + name, "is empty; every item needs text")
                    continue
            try:
                value = _jsonable(value)
            except _Unfit as error:
                record.error(prefix + name, str(error))
                continue
            if value is None:
                record.error(
                    prefix + name,
                    "is null; every item needs a value for each project field",
                )
                continue
            fields[name] = value
        return fields, used

    def _external_id(
        self,
        record: _Record,
        places: list[tuple[str, dict[str, Any]]],
        defaults: list[tuple[str, dict[str, Any], str]],
    ) -> tuple[str | None, str, set[str]]:
        """(id, where it came from, keys used) from --id-field or the defaults.

        ``places`` are (prefix, mapping) searched for ``--id-field``;
        ``defaults`` are (prefix, mapping, key) tried in order otherwise.
        """
        tries = (
            [(prefix, mapping, self.id_field) for prefix, mapping in places]
            if self.id_field
            else defaults
        )
        for prefix, mapping, key in tries:
            if key not in mapping:
                continue
            try:
                value = _id_text(mapping[key])
            except _Unfit as error:
                record.error(prefix + key, str(error))
                return None, prefix + key, {key} if not prefix else set()
            if value is not None:
                return value, prefix + key, {key} if not prefix else set()
            if self.id_field:
                break
        if self.id_field:
            record.error(
                self.id_field,
                f"missing or empty; --id-field {self.id_field} needs an id in every "
                "record",
            )
        return None, "content", set()

    def _label(self, value: Any, field: str, record: _Record) -> str | None:
        """The JSON-encoded label of ``value``, None when it carries none."""
        if isinstance(value, float) and math.isnan(value):
            return None
        if self.multi_label:
            names = self._multi(value, field, record)
            if not names:
                return None
            return encode_label(self.project, names)
        name = self._single(value, field, record)
        return None if name is None else encode_label(self.project, name)

    def _one(self, value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None
        return value.strip()

    def _unknown(self, bad: list[str], field: str, record: _Record) -> None:
        what = (
            f"{bad[0]!r} is not a label"
            if len(bad) == 1
            else f"{', '.join(map(repr, bad))} are not labels"
        )
        record.error(
            field,
            f"{what} of project {self.project.name!r}; valid labels: "
            f"{', '.join(self.labels)}",
        )

    def _single(self, value: Any, field: str, record: _Record) -> str | None:
        if isinstance(value, list | tuple):
            if not value:
                return None
            if len(value) > 1:
                record.error(
                    field,
                    f"got {len(value)} labels ({', '.join(map(str, value))}); the "
                    "project is single-label, give exactly one",
                )
                return None
            value = value[0]
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        name = self._one(value)
        if name is None:
            record.error(field, f"expected a label (a string), got {type_name(value)}")
            return None
        if name not in self.label_set:
            self._unknown([name], field, record)
            return None
        return name

    def _multi(self, value: Any, field: str, record: _Record) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            parts: list[Any] = [part for part in value.split("|") if part.strip()]
        elif isinstance(value, list | tuple):
            parts = list(value)
        else:
            record.error(
                field,
                f"expected a list of labels or 'a|b' text, got {type_name(value)}",
            )
            return []
        names = [self._one(part) for part in parts]
        if any(name is None for name in names):
            record.error(field, "expected every label to be a string")
            return []
        unknown = sorted(
            {n for n in names if n is not None and n not in self.label_set}
        )
        if unknown:
            self._unknown(unknown, field, record)
            return []
        return sorted({n for n in names if n is not None})

    def _extra(
        self, data: dict[str, Any], used: set[str], record: _Record, prefix: str = ""
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in used:
                continue
            try:
                extra[_check_text(str(key))] = _jsonable(value)
            except _Unfit as error:
                record.error(prefix + str(key), str(error))
        return extra

    def _candidate(
        self,
        record: _Record,
        external_id: str | None,
        id_source: str,
        fields: dict[str, Any],
        seeds: list[SeedAnnotation],
        source: dict[str, Any],
    ) -> Candidate | None:
        if record.errors:
            return None
        digest = content_hash(fields)
        label: str | None = None
        confidence: float | None = None
        if seeds:
            label, confidence = _resolve([seed.label for seed in seeds])
        return Candidate(
            line=record.line,
            external_id=external_id or digest[:16],
            id_source=id_source,
            explicit_id=external_id is not None,
            fields=fields,
            content_hash=digest,
            label=label,
            confidence=confidence,
            annotations=seeds,
            source={
                "format": self.format,
                "file": self.file,
                "line": record.line,
                "id_from": id_source,
                **source,
            },
        )

    def _provenance(self, record: _Record, **values: Any) -> dict[str, Any]:
        provenance = {"tool": self.format, "file": self.file, "line": record.line}
        for key, value in values.items():
            try:
                provenance[key] = _jsonable(value)
            except _Unfit as error:
                record.error(key, str(error))
        return provenance

    # -- CSV, JSONL, Parquet ----------------------------------------------------

    def _generic(self, raw: RawRecord, record: _Record) -> Candidate | None:
        data = raw.data
        external_id, id_source, used = self._external_id(
            record,
            [("", data)],
            [("", data, "external_id"), ("", data, "id")],
        )
        fields, field_keys = self._fields(data, record)
        used |= field_keys
        seeds: list[SeedAnnotation] = []
        label = self._label(data.get("label"), "label", record)
        used.add("label")
        provenance_keys = [k for k in _PROVENANCE_COLUMNS if k not in self.item_fields]
        used.update(provenance_keys)
        if label is not None:
            seeds.append(
                SeedAnnotation(
                    label,
                    self._provenance(
                        record,
                        annotator=data.get("annotator"),
                        timestamp=data.get("annotated_at"),
                    ),
                )
            )
        extra = self._extra(data, used, record)
        for key in provenance_keys:  # without a label they are kept as data
            if label is None and data.get(key) is not None:
                extra[key] = data[key]
        return self._candidate(
            record, external_id, id_source, fields, seeds, {"extra": extra}
        )

    # -- Label Studio -------------------------------------------------------------

    def _label_studio(self, raw: RawRecord, record: _Record) -> Candidate | None:
        task = raw.data
        data = task.get("data")
        if data is None:  # Label Studio's short form: the task is its data
            data = {k: v for k, v in task.items() if k not in _LS_TOP}
        elif not isinstance(data, dict):
            record.error("data", f"expected an object of fields, got {type_name(data)}")
            return None
        meta = _mapping(task.get("meta"))
        external_id, id_source, _ = self._external_id(
            record,
            [("data.", data), ("meta.", meta), ("", task)],
            [
                ("data.", data, "external_id"),
                ("data.", data, "id"),
                ("meta.", meta, "external_id"),
                ("", task, "id"),
            ],
        )
        fields, field_keys = self._fields(data, record, prefix="data.")
        seeds = self._ls_annotations(task, record)
        extra = self._extra(
            data, field_keys | _used(id_source, "data."), record, "data."
        )
        source: dict[str, Any] = {"extra": extra}
        rest = {k: v for k, v in task.items() if k not in ("data", "annotations")}
        if "predictions" in rest:
            source["ls_predictions"] = self._keep(
                rest.pop("predictions"), "predictions", record
            )
        if "id" in task:
            source["ls_id"] = self._keep(task["id"], "id", record)
        source["ls"] = self._keep(rest, "task", record)
        return self._candidate(record, external_id, id_source, fields, seeds, source)

    def _keep(self, value: Any, field: str, record: _Record) -> Any:
        try:
            return _jsonable(value)
        except _Unfit as error:
            record.error(field, str(error))
            return None

    def _ls_annotations(
        self, task: dict[str, Any], record: _Record
    ) -> list[SeedAnnotation]:
        key = "annotations" if "annotations" in task else "completions"
        annotations = task.get(key) or []
        if not isinstance(annotations, list):
            record.error(key, f"expected a list, got {type_name(annotations)}")
            return []
        seeds: list[SeedAnnotation] = []
        for index, annotation in enumerate(annotations):
            where = f"{key}[{index}]"
            if not isinstance(annotation, dict):
                record.error(where, f"expected an object, got {type_name(annotation)}")
                continue
            if annotation.get("was_cancelled"):
                continue
            choices = self._choices(annotation.get("result"), where, record)
            if not choices:
                continue
            value: Any = choices
            if not self.multi_label:
                if len(choices) > 1:
                    record.error(
                        f"{where}.result",
                        f"chose {len(choices)} options "
                        f"({', '.join(map(str, choices))}); a single-label project "
                        "takes exactly one",
                    )
                    continue
                value = choices[0]
            label = self._label(value, f"{where}.result", record)
            if label is None:
                continue
            provenance = self._provenance(
                record,
                annotator=_annotator(annotation.get("completed_by")),
                timestamp=annotation.get("created_at"),
                ls_annotation_id=annotation.get("id"),
                lead_time=annotation.get("lead_time"),
            )
            seeds.append(SeedAnnotation(label, provenance))
        return seeds

    def _choices(self, result: Any, where: str, record: _Record) -> list[Any]:
        if result is None:
            return []
        if not isinstance(result, list):
            record.error(f"{where}.result", f"expected a list, got {type_name(result)}")
            return []
        choices: list[Any] = []
        for part in result:
            value = part.get("value") if isinstance(part, dict) else None
            if not isinstance(value, dict) or "choices" not in value:
                continue
            if not isinstance(value["choices"], list):
                record.error(
                    f"{where}.result",
                    f"expected value.choices to be a list, got "
                    f"{type_name(value['choices'])}",
                )
                continue
            choices.extend(value["choices"])
        return choices

    # -- Prodigy -------------------------------------------------------------------

    def _prodigy(self, raw: RawRecord, record: _Record) -> Candidate | None:
        data = raw.data
        meta = _mapping(data.get("meta"))
        external_id, id_source, used = self._external_id(
            record,
            [("", data), ("meta.", meta)],
            [("meta.", meta, "id"), ("", data, "external_id"), ("", data, "id")],
        )
        fields, field_keys = self._fields(data, record, text_fallback="text")
        used |= field_keys
        seeds: list[SeedAnnotation] = []
        label = self._prodigy_label(data, record)
        if label is not None:
            seeds.append(
                SeedAnnotation(
                    label,
                    self._provenance(
                        record,
                        annotator=data.get("_annotator_id") or data.get("_session_id"),
                        timestamp=data.get("_timestamp"),
                        answer=data.get("answer"),
                    ),
                )
            )
        prodigy = {
            k: v for k, v in data.items() if k.startswith("_") or k in _PRODIGY_KEYS
        }
        used |= set(prodigy)
        source = {
            "prodigy": self._keep(prodigy, "record", record),
            "extra": self._extra(data, used, record),
        }
        return self._candidate(record, external_id, id_source, fields, seeds, source)

    def _prodigy_label(self, data: dict[str, Any], record: _Record) -> str | None:
        answer = data.get("answer")
        if answer is None or answer in ("reject", "ignore"):
            return None
        if answer != "accept":
            record.error(
                "answer",
                f"expected 'accept', 'reject' or 'ignore', got {_short(answer)}",
            )
            return None
        if "accept" in data:
            accepted = data["accept"]
            if not isinstance(accepted, list):
                record.error(
                    "accept",
                    f"expected a list of option ids, got {type_name(accepted)}",
                )
                return None
            return self._label(accepted, "accept", record)
        if "label" in data:
            return self._label(data["label"], "label", record)
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _used(id_source: str, prefix: str) -> set[str]:
    """The key of ``id_source`` when it lies under ``prefix``."""
    return {id_source[len(prefix) :]} if id_source.startswith(prefix) else set()


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
