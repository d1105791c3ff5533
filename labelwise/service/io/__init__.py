"""Import and export: validate every record, then write them in one transaction.

``import_file`` reads CSV, JSONL, Parquet, Label Studio JSON or Prodigy JSONL
and refuses the whole file (``ImportRejected``, every bad record listed) when
any record is bad; ``export_project`` writes a project's items with their
final labels and provenance in the same formats. See docs/import-export.md.
"""

from __future__ import annotations

from labelwise.service.io._readers import (
    FORMATS,
    IMPORT_FORMATS,
    count_records,
    detect_format,
)
from labelwise.service.io.exporter import EXPORT_FORMATS, export_project
from labelwise.service.io.importer import ImportReport, import_file

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "IMPORT_FORMATS",
    "ImportReport",
    "count_records",
    "detect_format",
    "export_project",
    "import_file",
]
