"""SIGKILL ``labelwise serve`` 20 times under 8 annotators: no acknowledged label lost.

The run itself is ``bench/crash.py`` (its docstring lists every check); here at
a small size on SQLite and PostgreSQL. The full size and its figures are in
bench/README.md.
"""

from __future__ import annotations

import pytest
from crash import CrashConfig, run_crash

CI_SIZE = CrashConfig(
    annotators=8, kills=20, items=3000, ttl_seconds=6, min_gap=0.1, max_gap=0.8
)


@pytest.mark.slow
def test_acknowledged_submits_survive_sigkill_exactly_once(store_url, tmp_path):
    report = run_crash(store_url, tmp_path, CI_SIZE)
    figures = report.to_dict()
    assert report.kills == CI_SIZE.kills, figures
    assert report.problems() == [], (figures, (tmp_path / "serve.log").read_text())
    # The clients really went through the kills: they retried and were answered.
    assert report.client_retries > 0, figures
    assert report.submits_acknowledged >= CI_SIZE.kills, figures
    assert report.submits_found == report.submits_acknowledged
    assert report.duplicates == 0
    assert report.stale_leases == 0
    assert (report.final_claim, report.final_submit) == (200, 201)
