"""Renames in issue #10's run files when the default changed (kept as record).

1. ``issue10`` (session 2): runs made while ``default`` was issue #2's mix (60 %
   top-k margin) become ``default_issue2``; the runs of ``cand_repr`` (the
   representative mix) become ``default``.
2. ``blend`` (session 3): runs of the representative mix become
   ``default_issue10``; the runs of ``cand_blend`` (40 % CLUE, 40 %
   representative: the selection of today's default, only the CLUE share's
   reason label differs, which selection never reads) become ``default``.

Each step runs once per file; ``"default_is"`` records the last one applied.

Usage: python bench/migrate10.py [RUNS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STEPS = [
    ("issue10", {"default": "default_issue2", "cand_repr": "default"}),
    ("blend", {"default": "default_issue10", "cand_blend": "default"}),
]


def migrate(path: Path) -> list[str]:
    """Apply the steps ``path`` has not had yet; the names of those applied."""
    record = json.loads(path.read_text())
    done = [name for name, _ in STEPS]
    current = record.get("default_is")
    todo = STEPS[done.index(current) + 1 :] if current in done else STEPS
    for name, rename in todo:
        for run in record["runs"]:
            run["policy"] = rename.get(run["policy"], run["policy"])
        record["default_is"] = name
    if todo:
        path.write_text(json.dumps(record) + "\n")
    return [name for name, _ in todo]


if __name__ == "__main__":
    folder = Path(
        sys.argv[1] if len(sys.argv) > 1 else "bench/results/efficiency10/runs"
    )
    for file in sorted(folder.glob("*.json")):
        applied = migrate(file)
        print(file.name, "migrated: " + ", ".join(applied) if applied else "up to date")
