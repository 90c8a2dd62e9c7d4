"""``canary-analyzer demo`` (what ``make demo`` runs) end to end: the main job on the
simulated mesh with a real Prometheus and Alertmanager ends in the rollback of the bad
second wave, on-call receives the pages, and the report is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: the demo's own deadline for the upgrade, inside the subprocess's, inside the test's: a
#: stalled night ends with the demo's error and the service log, not a bare timeout
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]


def test_demo_rolls_back_the_bad_wave_and_pages_on_call(tmp_path):
    work = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "demo", "--work-dir", str(work), "--timeout", "300"],
        capture_output=True, text=True, timeout=390, cwd=REPO,
        env={"COLUMNS": "200", "PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    output = done.stdout
    serve_log = work / "serve.log"
    log_tail = serve_log.read_text()[-3000:] if serve_log.exists() else "(no serve.log)"
    assert done.returncode == 0, output[-3000:] + done.stderr[-3000:] + log_tail
    assert "rolled_back" in output
    assert "catalog" in output and "FAIL" in output
    assert "on-call received [firing] CanaryAnalyzerRollbackStarted (critical)" in output
    assert "CanaryAnalyzerRollbackFinished" in output
    # what a real cluster has too: a Job pod the restart leaves alone is reported, not waited
    # on, and billing is reached (and planned) through istio-injection=enabled
    assert "not restarted by this upgrade" in output and "ledger-export" in output
    assert "billing" in output
    reports = list((work / "reports").glob("upgrade-*.html"))
    assert reports and "catalog" in reports[0].read_text()
    assert (work / "serve.log").stat().st_size > 0
