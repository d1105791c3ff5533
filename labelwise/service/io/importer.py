"""``import_file``: check every record of a file, then write them all, or nothing.

The file is read twice, streaming: the first pass validates every record
against the project (fields, labels, ids unique in the file and in the
project) and collects every problem; only when there is none does the second
pass inserts the items with Core bulk inserts (2,000 rows per statement, their
new ids come back by RETURNING in parameter order), then their seed annotations
and final labels the same way, all in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    bindparam,
    func,
    insert,
    select,
    text,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labelwise.exceptions import (
    ConflictError,
    ImportRejected,
    InvalidInputError,
    NotFoundError,
    RecordError,
)
from labelwise.service.io._normalize import Candidate, Normalizer
from labelwise.service.io._readers import (
    FORMATS,
    IMPORT_FORMATS,
    RecordSource,
    detect_format,
)
from labelwise.service.store.labels import encode_label
from labelwise.service.store.schema import (
    ITEM_ROLES,
    Base,
    FinalLabel,
    Item,
    Project,
    utcnow,
)

__all__ = [
    "MODEL_LABEL",
    "ImportReport",
    "import_file",
    "model_label",
    "resolve_format",
]

#: Items per INSERT statement.
_CHUNK = 2000
#: External ids per lookup of the ids already in the project.
_LOOKUP = 900
#: Core tables: bulk inserts skip the ORM's per-row bookkeeping.
_ITEMS = Base.metadata.tables["items"]
_ANNOTATIONS = Base.metadata.tables["annotations"]
_FINAL_LABELS = Base.metadata.tables["final_labels"]
#: Items written at once after which PostgreSQL's statistics are refreshed.
_ANALYZE_AFTER = 5000
#: The column of a failure record holding what the model predicted.
MODEL_LABEL = "model_label"
#: Roles whose every item must carry a label.
_NEEDS_LABEL = ("gold", "validation")


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: items, seed labels, and the records it skipped."""

    project: str
    path: str
    format: str
    role: str
    items: int
    labels: int
    skipped_by_split: int
    skipped_duplicates: int

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data (what ``labelwise import --json`` prints)."""
        return asdict(self)


@dataclass(slots=True)
class _Pending:
    external_id: str
    line: int
    label: str | None
    explicit: bool
    id_source: str


@dataclass
class _Plan:
    errors: list[RecordError] = field(default_factory=list)
    skip: set[int] = field(default_factory=set)
    records: int = 0
    skipped_by_split: int = 0
    splits: set[str] = field(default_factory=set)
    duplicates: int = 0
    items: int = 0
    labels: int = 0


def _no_tick() -> None:
    return None


def model_label(project: Project, value: Any) -> str:
    """A failure's model prediction as stored label text (``a|b`` for multi-label)."""
    if project.multi_label and isinstance(value, str):
        value = [part for part in value.split("|") if part.strip()]
    return encode_label(project, value)


def resolve_format(path: Path, format: str) -> str:
    """``format``, or the format of ``path`` by its suffix when it is ``auto``."""
    if format == "auto":
        return detect_format(path)
    if format not in FORMATS:
        raise InvalidInputError(
            f"Unknown import format {format!r}; valid formats: "
            f"{', '.join(IMPORT_FORMATS)}.",
            hint="Pass one of them with --format, or 'auto' to go by the suffix.",
        )
    return format


def _check_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise NotFoundError(
            f"Cannot import {str(path)!r}: no such file.",
            hint="Check the path (relative paths start at the current directory).",
        )
    if not file.is_file():
        raise InvalidInputError(
            f"Cannot import {str(path)!r}: expected a file, got a directory.",
            hint="Name one .csv, .jsonl, .parquet or .json file.",
        )
    return file


def _display(label: str | None) -> str:
    if label is None:
        return "no label"
    value = json.loads(label)
    return "|".join(value) if isinstance(value, list) else str(value)


def _existing(
    session: Session, project_id: int, wanted: list[str]
) -> Select[str, str, str | None, str | None]:
    """Items of the project among ``wanted`` external ids, with their labels.

    On PostgreSQL the ids are one array parameter, unnested, each looked up by
    a LATERAL subquery (LIMIT 1): a probe of the unique index per id, about ten
    times faster than an ``IN`` list of 900 parameters. It needs statistics:
    without them (right after a bulk load) PostgreSQL may probe through the
    (project_id, role) index instead, which is why large imports ANALYZE.
    """
    final = (
        select(FinalLabel.label)
        .where(FinalLabel.item_id == Item.id)
        .scalar_subquery()
        .label("final")
    )
    found = select(Item.external_id, Item.role, Item.gold_label, final).where(
        Item.project_id == project_id
    )
    if session.get_bind().dialect.name != "postgresql":
        return found.where(Item.external_id.in_(wanted))
    ids = func.unnest(bindparam("ids", wanted, type_=ARRAY(String)))
    table = ids.table_valued("eid").render_derived(name="wanted")
    probe = found.where(Item.external_id == table.c.eid).limit(1).lateral("found")
    return select(
        probe.c.external_id, probe.c.role, probe.c.gold_label, probe.c.final
    ).select_from(table.join(probe, true()))


class _Validator:
    """The first pass: every problem of every record, and what to skip."""

    def __init__(
        self,
        session: Session,
        project: Project,
        normalizer: Normalizer,
        role: str,
        split: str | None,
    ) -> None:
        self.session = session
        self.project = project
        self.normalizer = normalizer
        self.role = role
        self.split = split
        self.plan = _Plan()
        self.seen: dict[str, _Pending] = {}
        self.pending: list[_Pending] = []

    def _error(self, line: int, field: str, message: str) -> None:
        self.plan.errors.append(RecordError(self.normalizer.file, line, field, message))

    def run(self, source: RecordSource, tick: Callable[[], None]) -> _Plan:
        plan = self.plan
        for read in source:
            tick()
            plan.records += 1
            if isinstance(read, RecordError):
                plan.errors.append(read)
                continue
            if self.split is not None:
                value = self.normalizer.split_of(read.data)
                if value is not None and len(plan.splits) < 20:
                    plan.splits.add(value)
                if value != self.split:
                    plan.skipped_by_split += 1
                    continue
            candidate, errors = self.normalizer(read)
            if candidate is None:
                plan.errors.extend(errors)
                continue
            self._accept(candidate)
        self._check_existing()
        self._check_file_level()
        return plan

    def _accept(self, candidate: Candidate) -> None:
        if candidate.label is None and self.role in _NEEDS_LABEL:
            self._error(
                candidate.line,
                self.normalizer.label_field,
                f"missing; every {self.role} item needs a label, this record has none",
            )
            return
        if self.role == "failure":
            self._check_model_label(candidate)
        pending = _Pending(
            candidate.external_id,
            candidate.line,
            candidate.label,
            candidate.explicit_id,
            candidate.id_source,
        )
        prior = self.seen.get(candidate.external_id)
        if prior is not None:
            self._duplicate_in_file(pending, prior)
            return
        self.seen[pending.external_id] = pending
        self.pending.append(pending)
        self.plan.items += 1
        self.plan.labels += pending.label is not None
        if len(self.pending) >= _LOOKUP:
            self._check_existing()

    def _check_model_label(self, candidate: Candidate) -> None:
        """A failure's ``model_label`` (what the model said) must be a project label."""
        value = (candidate.source.get("extra") or {}).get(MODEL_LABEL)
        if value is None or value == "":
            return
        try:
            model_label(self.project, value)
        except InvalidInputError:
            valid = ", ".join(str(label) for label in self.project.labels)
            self._error(
                candidate.line,
                MODEL_LABEL,
                f"{value!r} is not a label of project {self.project.name!r}; valid "
                f"labels: {valid} (what the model predicted for this failure)",
            )

    def _duplicate_in_file(self, pending: _Pending, prior: _Pending) -> None:
        where = self.normalizer.where(prior.line)
        if pending.explicit:
            self._error(
                pending.line,
                pending.id_source,
                f"duplicate id {pending.external_id!r}: {where} has the same id; "
                "every record needs an id of its own",
            )
        elif pending.label == prior.label:
            self.plan.skip.add(pending.line)
            self.plan.duplicates += 1
        else:
            self._error(
                pending.line,
                self.normalizer.label_field,
                f"same content as {where} but {_display(pending.label)} here and "
                f"{_display(prior.label)} there; fix one of them, or give the "
                "records ids of their own (an id column or --id-field)",
            )

    def _check_existing(self) -> None:
        if not self.pending:
            return
        by_id = {p.external_id: p for p in self.pending}
        self.pending = []
        rows = self.session.execute(
            _existing(self.session, self.project.id, list(by_id))
        ).all()
        for external_id, role, gold_label, final_label in rows:
            pending = by_id[external_id]
            existing = gold_label if role == "gold" else final_label
            if pending.explicit:
                self._error(
                    pending.line,
                    pending.id_source,
                    f"id {external_id!r} is already in project {self.project.name!r} "
                    f"(a {role} item); ids are unique in a project: drop this record "
                    "or give it another id",
                )
            elif pending.label is None or pending.label == existing:
                self.plan.skip.add(pending.line)
                self.plan.duplicates += 1
                self.plan.items -= 1
                self.plan.labels -= pending.label is not None
            else:
                self._error(
                    pending.line,
                    self.normalizer.label_field,
                    f"the same content is already in project {self.project.name!r} "
                    f"(item {external_id!r}, {role}, {_display(existing)}) but this "
                    f"record says {_display(pending.label)}; drop the record, or give "
                    "it an id of its own (an id column or --id-field)",
                )

    def _check_file_level(self) -> None:
        plan = self.plan
        if plan.records == 0:
            self._error(0, "file", "has no records; expected at least one")
        elif self.split is not None and plan.records == plan.skipped_by_split:
            found = ", ".join(sorted(plan.splits)) or "none (no 'split' column)"
            self._error(
                0,
                "split",
                f"no record has split {self.split!r}; splits in the file: {found}",
            )


def _rows(
    project: Project, role: str, batch: list[Candidate], now: Any
) -> list[dict[str, Any]]:
    rows = []
    for candidate in batch:
        source = candidate.source
        gold = role == "gold"
        said = (source.get("extra") or {}).get(MODEL_LABEL)
        if role == "failure" and said is not None and said != "":
            source = {**source, MODEL_LABEL: model_label(project, said)}
        if gold and candidate.annotations:
            source = {
                **source,
                "label_provenance": [a.provenance for a in candidate.annotations],
            }
        rows.append(
            {
                "project_id": project.id,
                "external_id": candidate.external_id,
                "role": role,
                "fields": candidate.fields,
                "content_hash": candidate.content_hash,
                "source": source,
                "gold_label": candidate.label if gold else None,
                "created_at": now,
            }
        )
    return rows


def _flush(
    session: Session, project: Project, role: str, batch: list[Candidate]
) -> None:
    """Insert one chunk: items, then their seed annotations and final labels."""
    if not batch:
        return
    now = utcnow()
    try:
        # RETURNING in parameter order gives the new ids without a lookup by
        # external id (which PostgreSQL plans badly on a table that has just
        # grown by 100 k rows in this transaction: a sequential scan per chunk).
        ids = (
            session.execute(
                insert(_ITEMS).returning(_ITEMS.c.id, sort_by_parameter_order=True),
                _rows(project, role, batch, now),
            )
            .scalars()
            .all()
        )
        if role == "gold":
            return
        annotations: list[dict[str, Any]] = []
        finals: list[dict[str, Any]] = []
        for item_id, candidate in zip(ids, batch, strict=True):
            if candidate.label is None:
                continue
            annotations += [
                {
                    "project_id": project.id,
                    "item_id": item_id,
                    "label": seed.label,
                    "source": "import",
                    "provenance": seed.provenance,
                    "created_at": now,
                }
                for seed in candidate.annotations
            ]
            finals.append(
                {
                    "item_id": item_id,
                    "project_id": project.id,
                    "label": candidate.label,
                    "method": "seed",
                    "confidence": candidate.confidence,
                    "n_annotations": len(candidate.annotations),
                    "updated_at": now,
                }
            )
        if annotations:
            session.execute(insert(_ANNOTATIONS), annotations)
        if finals:
            session.execute(insert(_FINAL_LABELS), finals)
    except IntegrityError as error:
        raise ConflictError(
            f"Could not write the items of this import into project "
            f"{project.name!r}: another writer added items with the same ids "
            "meanwhile.",
            hint="Run the import again; it will report the ids that now clash.",
        ) from error


def import_file(
    *,
    session: Session,
    project: Project,
    path: str | Path,
    role: str,
    format: str = "auto",
    id_field: str | None = None,
    split: str | None = None,
    ignore_labels: bool = False,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """Import every record of ``path`` into ``project`` as ``role`` items, or none.

    ``ignore_labels`` imports the items without their labels (to replay a
    labeled file as an unlabeled pool). ``progress`` is called once per record
    and pass (two passes: validate, write). Raises ImportRejected listing every
    bad record; nothing is written.
    """
    if role not in ITEM_ROLES:
        raise InvalidInputError(
            f"An item role must be one of {', '.join(ITEM_ROLES)}. Got {role!r}.",
            hint="Pass --role pool, validation, gold or failure.",
        )
    file = _check_file(path)
    fmt = resolve_format(file, format)
    source = RecordSource(file, fmt)
    if ignore_labels and role in _NEEDS_LABEL:
        raise InvalidInputError(
            f"{role} items need their labels; --ignore-labels cannot be used "
            f"with --role {role}.",
            hint="Drop --ignore-labels, or import these items as --role pool.",
        )
    normalizer = Normalizer(project, fmt, str(path), id_field, ignore_labels)
    tick = progress or _no_tick
    plan = _Validator(session, project, normalizer, role, split).run(source, tick)
    if plan.errors:
        count = len(plan.errors)
        raise ImportRejected(
            f"Import of {str(path)!r} into project {project.name!r} refused: "
            f"{count} problem{'s' if count != 1 else ''} in a file of "
            f"{plan.records} record{'s' if plan.records != 1 else ''}; "
            "nothing was written.",
            errors=sorted(plan.errors, key=lambda error: error.line),
            hint="Fix every record listed (FILE:LINE: field: problem) and import "
            "the file again; see docs/import-export.md.",
        )
    batch: list[Candidate] = []
    for read in source:
        tick()
        if isinstance(read, RecordError):
            raise _changed(str(path), [read])
        if split is not None and normalizer.split_of(read.data) != split:
            continue
        if read.line in plan.skip:
            continue
        candidate, errors = normalizer(read)
        if candidate is None:
            raise _changed(str(path), errors)
        batch.append(candidate)
        if len(batch) >= _CHUNK:
            _flush(session, project, role, batch)
            batch = []
    _flush(session, project, role, batch)
    if plan.items >= _ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics now, not when autovacuum gets round to it: without
        # them PostgreSQL probes a just-loaded table through the wrong index
        # (every item of the project per lookup) and the next import crawls.
        session.execute(text("ANALYZE items, annotations, final_labels"))
    return ImportReport(
        project=project.name,
        path=str(path),
        format=fmt,
        role=role,
        items=plan.items,
        labels=plan.labels,
        skipped_by_split=plan.skipped_by_split,
        skipped_duplicates=plan.duplicates,
    )


def _changed(path: str, errors: list[RecordError]) -> ImportRejected:
    return ImportRejected(
        f"{path!r} changed while it was being imported; nothing was written.",
        errors=errors,
        hint="Import the file again once nothing else writes to it.",
    )
