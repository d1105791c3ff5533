"""Reliability fixtures: the crash-test module lives in bench/ (run at full size).

``bench/`` (crash.py) and ``tests/service/api`` (apitools.py) go on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]
for folder in (_ROOT / "bench", _ROOT / "tests" / "service" / "api"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
