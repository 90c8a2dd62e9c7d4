"""An UpgradeService on the in-memory mesh with a virtual clock: the service's decisions
(windows, pause, approve, abort, requests) without real waiting."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analyzer.core.verdicts import Verdict
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.clock import VirtualClock
from analyzer.service.engine import LogNotifier, MemoryStateStore
from analyzer.service.maintenance import MaintenanceHours
from analyzer.service.rules_reload import RulesWatcher
from analyzer.service.self_metrics import SelfMetrics
from analyzer.service.service import JudgingSetup, ReportShelf, ServiceStores, UpgradeService
from analyzer.settings import Settings, UpgradeSettings
from analyzer.views.reports import write_upgrade_report
from analyzer.views.status_page import list_reports
from tests.fixtures.fakes import FakeMesh, ScriptedJudging

NAMES = ("a", "b", "c", "d", "e", "f")
START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def fixed_looks() -> Settings:
    """Settings judging each wave once per window (``upgrade.looks: fixed``): for tests
    whose scripted verdicts count the judgements of a wave (the default, ``every-step``,
    judges it at every step)."""
    return Settings(upgrade=UpgradeSettings(looks="fixed"))


def make_service(
    tmp_path: Path,
    *,
    script=lambda _n, _i: Verdict.PASS,
    cron: str | None = None,
    duration: timedelta = timedelta(hours=4),
    mesh: FakeMesh | None = None,
    settings: Settings | None = None,
    report_writer=write_upgrade_report,
    soak_watch=None,
    outlook=None,
    start: datetime = START,
    history=None,
    service_store: MemoryStateStore | None = None,
    timeline_store: MemoryStateStore | None = None,
):
    """``report_writer=None``: a service the command gave no report writer; ``outlook``:
    what ``serve`` wires to Prometheus to plan and forecast the night (None: none);
    ``service_store``, ``timeline_store``: where the service memory and the timeline are
    kept (fresh in-memory stores; the timeline's by default lives in the service)."""
    mesh = mesh or FakeMesh.standard(NAMES)
    clock = VirtualClock(start)
    sent = []
    pager = AlertDispatcher([LogNotifier(sent=sent)], clock)
    judging = ScriptedJudging(script)
    settings = settings or Settings()
    service = UpgradeService(
        settings=settings,
        cluster=mesh,
        stores=ServiceStores(
            engine=MemoryStateStore(),
            service=service_store or MemoryStateStore(),
            timeline=timeline_store,
        ),
        judging=JudgingSetup(
            lambda _rules, _record: judging, RulesWatcher(Path("rules")), outlook
        ),
        pager=pager,
        metrics=SelfMetrics(),
        hours=MaintenanceHours(cron, duration, "UTC"),
        clock=clock,
        interrupt=threading.Event(),
        reports=ReportShelf(tmp_path / "reports", report_writer, list_reports),
        soak_watch=soak_watch,
        history=history,
    )
    return service, mesh, clock, sent, judging


def run_tick(service: UpgradeService) -> None:
    """One loop pass, then wait for the engine worker it may have started."""
    service.tick()
    assert service.wait_idle(timeout=60), "engine worker did not stop"
