"""What the parts of the service share: its collaborators, grouped by what they are for,
and the little state the loop, the verbs and the engine worker all touch.

Why it exists: ``UpgradeService`` is spread over modules by concern (``loop``, ``verbs``,
``worker``, ``status``), the way one controller's methods are spread over several files;
each part gets this one context instead of a long list of arguments. The command
(``commands._serve``) and the tests build the groups: ``ServiceStores`` (the state
ConfigMap's keys), ``JudgingSetup`` (how a restart is judged) and ``ReportShelf`` (where
upgrade reports go and who writes them: the command wires in the HTML writer, so the
service imports nothing of the presentation layer).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.core.ports import ClusterError, MeshCluster, StateStore, VersionedStore
from analyzer.core.rules import RuleSet
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.clock import Clock
from analyzer.service.engine import MemoryStateStore
from analyzer.service.inbox import ControlInbox, MemoryVersionedStore
from analyzer.service.leadership import Leadership
from analyzer.service.maintenance import MaintenanceHours
from analyzer.service.memory import Phase, ServiceMemory, ServiceView
from analyzer.service.rules_reload import RulesWatcher
from analyzer.service.self_metrics import SelfMetrics
from analyzer.service.soak import PruneGate
from analyzer.service.timeline import KeptTimeline
from analyzer.settings import Settings

if TYPE_CHECKING:
    from analyzer.service.analysis import AnalysisOutcome
    from analyzer.service.engine import Judging
    from analyzer.service.history import RestartHistory
    from analyzer.service.night_plan import NightOutlook
    from analyzer.service.prune_path import PrunePath
    from analyzer.service.shadow import ShadowWatch
    from analyzer.service.soak_judge import SoakWatch

log = logging.getLogger("canary_analyzer.service")

#: ``write(path, summary, timeline)``: renders and writes one upgrade's report.
ReportWriter = Callable[[Path, Mapping[str, Any], Sequence[Mapping[str, Any]]], object]
#: ``listing(directory)``: the reports there, as ``/api/status`` lists them.
ReportListing = Callable[[Path], list[dict[str, Any]]]


@dataclass(frozen=True)
class ServiceStores:
    """The keys of the state ConfigMap the service keeps: the engine's ``state``, its own
    ``service`` memory, the ``timeline`` and the standby ``inbox``. The last two live in
    memory when not given (a single replica that may forget them on restart)."""

    engine: StateStore
    service: StateStore
    timeline: StateStore | None = None
    inbox: VersionedStore | None = None


@dataclass(frozen=True)
class JudgingSetup:
    """How the service judges: ``judging_for(rules, record)`` builds the engine's judging
    (``rules()`` gives the current rule set, ``record(outcome)`` receives each analysis);
    ``rules`` is the hot-reloaded rule set; ``outlook(rules, namespaces, now)`` tells, as
    a new upgrade starts, what Prometheus says of the planned namespaces (thin evidence,
    the forecast: ``service.forecast.night_outlook``), from which the night is planned and
    forecast exactly as ``upgrade`` does (``service.night_plan.plan_night``); None: planned
    as listed, with no forecast."""

    judging_for: Callable[[Callable[[], RuleSet], Callable[[AnalysisOutcome], None]], Judging]
    rules: RulesWatcher
    outlook: Callable[[RuleSet, Sequence[str], datetime], NightOutlook] | None = None


@dataclass(frozen=True)
class ReportShelf:
    """Where upgrade reports go. ``write`` and ``listing`` come from the command (the HTML
    writer and the directory listing of the presentation layer); without them the service
    writes no report and lists none."""

    directory: Path
    write: ReportWriter | None = None
    listing: ReportListing | None = None

    @staticmethod
    def name(upgrade_id: str | None) -> str | None:
        return f"upgrade-{upgrade_id}.html" if upgrade_id else None

    def link(self, upgrade_id: str | None, public_url: str | None) -> str | None:
        """The report's address under the service's public URL, when both are known."""
        name = self.name(upgrade_id)
        return f"{public_url.rstrip('/')}/reports/{name}" if public_url and name else None

    def listed(self) -> list[dict[str, Any]]:
        return self.listing(self.directory) if self.listing is not None else []


@dataclass
class ServiceContext:
    """The collaborators and the shared state of one service."""

    settings: Settings
    cluster: MeshCluster
    stores: ServiceStores
    judging: JudgingSetup
    reports: ReportShelf
    hours: MaintenanceHours
    leadership: Leadership
    clock: Clock
    interrupt: threading.Event  # wakes a waiting engine (pause, abort, stop)
    pager: AlertDispatcher
    metrics: SelfMetrics
    #: after a promotion: the soak, then the prune offered for approval (``upgrade.prune``)
    prune_gate: PruneGate | None = None
    #: after a promotion: the soak's looks, a regression's page and rollback (``soak_judge``)
    soak_watch: SoakWatch | None = None
    #: the gate as the loop and verbs use it, telling timeline and report (``prune_path``)
    prune_path: PrunePath | None = field(default=None, init=False)
    #: the append-only restart history (``service.history``); None: not kept
    history: RestartHistory | None = None
    #: shadow mode (``service.shadow``): set, the loop judges restarts and runs no upgrade
    shadow: ShadowWatch | None = None
    view: ServiceView = field(default_factory=ServiceView)
    lock: threading.RLock = field(default_factory=threading.RLock)
    memory: ServiceMemory = field(init=False)
    timeline: KeptTimeline = field(init=False)
    inbox: ControlInbox = field(init=False)

    def __post_init__(self) -> None:
        self.timeline = KeptTimeline(self.stores.timeline or MemoryStateStore())
        self.timeline.load()  # a restarted service shows the timeline so far
        self.inbox = ControlInbox(self.stores.inbox or MemoryVersionedStore())
        self.memory = ServiceMemory.from_document(self._load_memory())

    def set_phase(self, phase: Phase, message: str = "") -> None:
        self.view.phase = phase
        if message:
            self.view.message = message
        self.metrics.set_phase(phase.metric)

    def _load_memory(self) -> dict[str, Any] | None:
        try:
            return self.stores.service.load()
        except ClusterError as error:
            log.warning("cannot read the service memory", extra={"fields": {"error": str(error)}})
            return None

    def reload_memory(self) -> None:
        """Take the memory as stored (a standby shows, and a new leader goes on with, what
        the leader remembered); an unreadable store keeps memory as it is.

        The read and its use happen under the lock every verb writes under: a verb that
        arrives while the read is on its way (an operator's request in the second the
        replica becomes leader) waits for it, and its write is not replaced by the older
        document."""
        with self.lock:
            try:
                document = self.stores.service.load()
            except ClusterError as error:
                log.warning("cannot read the service memory", extra={"fields": {
                    "error": str(error)}})  # fmt: skip
                return
            self.memory = ServiceMemory.from_document(document)

    def save_memory(self) -> None:
        self.stores.service.save(self.memory.to_document())
