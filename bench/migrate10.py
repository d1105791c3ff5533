"""One-off rename in issue #10's run files when the default changed (kept as record).

Runs made while ``default`` was issue #2's mix (60 % top-k margin) become
``default_issue2``; the runs of ``cand_repr`` (10 % random, 60 % representative,
20 % k-center, 10 % error-driven: the selection of today's default, only its
reason label differed) become ``default``. A file is migrated once: it is marked
``"default_is": "issue10"``.

Usage: python bench/migrate10.py [RUNS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RENAME = {"default": "default_issue2", "cand_repr": "default"}


def migrate(path: Path) -> bool:
    record = json.loads(path.read_text())
    if record.get("default_is") == "issue10":
        return False
    for run in record["runs"]:
        run["policy"] = RENAME.get(run["policy"], run["policy"])
    record["default_is"] = "issue10"
    path.write_text(json.dumps(record) + "\n")
    return True


if __name__ == "__main__":
    folder = Path(
        sys.argv[1] if len(sys.argv) > 1 else "bench/results/efficiency10/runs"
    )
    for file in sorted(folder.glob("*.json")):
        print(file.name, "migrated" if migrate(file) else "already migrated")
