"""The service's phases are an enum whose text is the published one: ``/api/status``
(``phase``), the ``canary_analyzer_upgrade_phase`` metric's labels and docs/oncall.md all
carry the same words as before the enum."""

from __future__ import annotations

import json
import re
from pathlib import Path

from analyzer.service.memory import Phase
from analyzer.service.self_metrics import PHASES, SelfMetrics

ONCALL = Path(__file__).resolve().parents[2] / "docs" / "oncall.md"


def test_phases_serialise_as_their_published_text() -> None:
    assert json.dumps({"phase": Phase.WAITING_WINDOW}) == '{"phase": "waiting-window"}'
    assert f"{Phase.ROLLING_BACK}: rolling back" == "rolling-back: rolling back"


def test_the_phases_are_the_ones_oncall_reads_about() -> None:
    text = " ".join(ONCALL.read_text().split())
    listed = text[text.index("Phases: ") :].split(" (this replica")[0]
    assert set(re.findall(r"`([a-z-]+)`", listed)) == {phase.value for phase in Phase}


def test_a_standby_exports_as_idle_and_every_other_phase_as_itself() -> None:
    metrics = SelfMetrics()
    for phase in Phase:
        metrics.set_phase(phase.metric)
        exposed = metrics.exposition().decode()
        on = re.findall(r'canary_analyzer_upgrade_phase\{phase="([a-z-]+)"\} 1\.0', exposed)
        assert on == ["idle" if phase is Phase.STANDBY else phase.value]
    assert Phase.STANDBY not in PHASES
