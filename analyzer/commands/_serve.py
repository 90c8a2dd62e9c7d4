"""The ``serve`` command's implementation, imported only when it runs (fast ``--help``).

The ``serve`` subcommand: the long-running service (windows, lease, alerts, HTTP).

Wires real adapters, the report writer and the report listing into
``service.service.UpgradeService``, runs its loop under apscheduler
and serves HTTP until SIGTERM/SIGINT, then stops gracefully: the current action finishes,
the state is persisted, the lease is released. Prints ``serving http://HOST:PORT`` (the bound
port, also for ``--listen 127.0.0.1:0``) once the HTTP interface is up.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from analyzer.adapters.istio_revisions import IstioRevisions
from analyzer.adapters.kubernetes import ConfigMapStateStore, KubernetesCluster
from analyzer.adapters.lease import KubernetesLease
from analyzer.adapters.prometheus import PrometheusSource
from analyzer.adapters.rule_files import default_rules_path
from analyzer.commands.common import (
    settings_from_args,
)
from analyzer.core.durations import parse_duration
from analyzer.core.ports import ClusterNotFoundError, StateStore
from analyzer.core.rules import RuleFileError
from analyzer.errors import BadInputError, ExitCode
from analyzer.service.alert_enrichment import notification_sinks
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.clock import RealClock
from analyzer.service.context import JudgingSetup, ReportShelf, ServiceStores
from analyzer.service.engine import MemoryStateStore
from analyzer.service.history import RestartHistory, history_path
from analyzer.service.judging import PrometheusJudging
from analyzer.service.leadership import LeaderElector, Leadership, lease_namespace
from analyzer.service.maintenance import MaintenanceHours
from analyzer.service.prune_path import SeenRevisions
from analyzer.service.rules_reload import RulesWatcher
from analyzer.service.self_metrics import SelfMetrics
from analyzer.service.service import UpgradeService
from analyzer.service.soak import PruneGate
from analyzer.service.soak_judge import SoakSettings, SoakWatch
from analyzer.settings import Settings
from analyzer.views.http_api import HttpServer, TokenCheck, create_app, parse_listen
from analyzer.views.status_page import list_reports, register_status_routes

log = logging.getLogger("canary_analyzer.serve")

SHADOW_MODE = (
    "shadow mode (service.mode: shadow): restarts are judged and recorded; no tag moves, no "
    "restart, no rollback, no alert is sent, nothing is written to the cluster"
)
NOBODY_PAGED = (
    "no alert receiver configured: nobody will be paged on a rollback or a hold; set "
    "--alertmanager-url or --webhook-url (CANARY_NOTIFICATIONS__ALERTMANAGER_URL, "
    "CANARY_NOTIFICATIONS__WEBHOOK_URL)"
)


def service_settings(args: argparse.Namespace) -> Settings:
    """Settings with the serve flags applied over the environment."""
    settings = settings_from_args(args)
    service = settings.service
    updates = {
        key: value
        for key, value in (
            ("listen", args.listen),
            ("token_file", Path(args.token_file) if args.token_file else None),
            ("window_cron", args.window_cron),
            ("timezone", args.timezone),
            ("to_revision", args.to_revision),
            ("from_revision", args.from_revision),
            ("detect_upgrades", args.detect_upgrades),
            ("mode", "shadow" if getattr(args, "shadow", False) else None),
        )
        if value is not None
    }
    if args.window_duration:
        updates["window_duration"] = parse_duration(args.window_duration)
    return settings.model_copy(update={"service": service.model_copy(update=updates)})


def _identity(settings: Settings) -> str:
    return (
        settings.service.identity
        or os.environ.get("POD_NAME")
        or f"{socket.gethostname()}-{os.getpid()}"
    )


def write_report(path: Path, summary, timeline) -> None:
    """The HTML report of an upgrade; the report code (templates, charts) loads only when
    a report is drawn, so an idle service does not carry it."""
    from analyzer.views.reports import write_upgrade_report

    write_upgrade_report(path, summary, timeline)


def serve_command(args: argparse.Namespace) -> int:
    settings = service_settings(args)
    service_settings_ = settings.service
    host, port = parse_listen(service_settings_.listen)
    hours = MaintenanceHours(
        service_settings_.window_cron, service_settings_.window_duration, service_settings_.timezone
    )
    tokens = TokenCheck(service_settings_.token_file)
    rules_dir = default_rules_path(settings.rules.directory)
    try:
        watcher = RulesWatcher(rules_dir)
    except RuleFileError as error:
        raise BadInputError(f"invalid rules:\n{error}") from None
    try:
        cluster = KubernetesCluster.from_settings(
            settings.kubernetes, settings.upgrade.istio_namespace
        )
    except ClusterNotFoundError as error:
        raise BadInputError(str(error)) from None
    source = PrometheusSource(settings.prometheus)
    identity = _identity(settings)
    interrupt = threading.Event()
    clock = RealClock(stop=interrupt, slice_seconds=0.5)
    metrics = SelfMetrics()
    shadow = service_settings_.mode == "shadow"
    sinks = notification_sinks(settings.notifications, cluster.target)
    if shadow:  # judge-only: no alert is sent, not even the heartbeat
        sinks = []
        log.warning(SHADOW_MODE)
    elif not sinks:
        log.warning(NOBODY_PAGED)
    pager = AlertDispatcher(
        sinks,
        clock,
        heartbeat_interval=service_settings_.heartbeat_interval,
        instance=identity,
        link=service_settings_.public_url,
        on_delivery=lambda sink, ok, _count: (
            None if ok else metrics.notification_failures.labels(sink=sink).inc()
        ),
    )
    upgrade = settings.upgrade
    leadership = Leadership()
    if service_settings_.leader_election and not shadow:  # shadow writes no Lease
        lease = KubernetesLease(
            cluster.api_client,
            lease_namespace(settings),
            service_settings_.lease_name,
            request_timeout=settings.kubernetes.request_timeout.total_seconds(),
        )
        leadership = Leadership(LeaderElector(lease, identity, service_settings_.lease_duration))

    def state_key(key: str) -> StateStore:  # one key of the state ConfigMap
        if shadow:  # shadow mode writes nothing to the cluster: it keeps its state in memory
            return MemoryStateStore()
        return ConfigMapStateStore(cluster, upgrade.state_configmap, upgrade.state_namespace, key)

    def judging_for(rules, record):
        return PrometheusJudging(
            source,
            rules,
            settings.rules.namespace_label,
            on_outcome=record,
            night_budget=settings.rules.night_budget,
            health=lambda action: cluster.pod_health(action.judged, action.restarted_at),
        )

    def outlook(rules, namespaces, now):
        from analyzer.service.forecast import night_outlook  # loads the judge's statistics

        return night_outlook(source, rules, settings, namespaces, now)

    revisions = SeenRevisions(
        lambda: IstioRevisions(cluster, upgrade.istio_namespace), clock.now
    ) if upgrade.prune else None

    service = UpgradeService(
        settings=settings,
        cluster=cluster,
        stores=ServiceStores(
            engine=state_key("state"),
            service=state_key("service"),
            timeline=state_key("timeline"),
            inbox=state_key("inbox"),
        ),
        judging=JudgingSetup(judging_for, watcher, outlook),
        hours=hours,
        prune_gate=PruneGate(
            revisions, upgrade.soak, pager.fire, pager.resolve, pager.adopt,
        ) if revisions is not None else None,
        revisions=revisions,
        soak_watch=SoakWatch(
            source, lambda: watcher.rules, settings.rules.namespace_label,
            SoakSettings(soak=upgrade.soak, every=upgrade.soak_every, window=upgrade.soak_window,
                         baselines=tuple(upgrade.soak_baselines), step=settings.windows.step,
                         delay=upgrade.evaluation_delay, auto_rollback=upgrade.soak_auto_rollback,
                         night_budget=settings.rules.night_budget),
        ),
        clock=clock,
        interrupt=interrupt,
        pager=pager,
        metrics=metrics,
        leadership=leadership,
        reports=ReportShelf(service_settings_.reports_dir, write_report, list_reports),
        history=RestartHistory(
            history_path(service_settings_.history_file, service_settings_.reports_dir)
        ),
        workload_templates=cluster if shadow else None,
    )
    reports_dir = service.reports_dir
    target = {"kubernetes": cluster.target.as_dict()} if cluster.target else {}

    def status_with_target() -> dict:
        return {**service.status(), **target}

    app = create_app(
        service,
        metrics,
        tokens,
        extra_routes=lambda app: register_status_routes(app, status_with_target, reports_dir),
        status_extra=target,
        user_header=service_settings_.user_header,
    )
    http = HttpServer(app, host, port)
    http.start()
    print(f"serving http://{host}:{http.bound_port}", flush=True)
    log.info(
        "service started",
        extra={"fields": {"identity": identity, "window": hours.describe(), "rules": watcher.rules.names(),
                          "control": "enabled" if service_settings_.token_file else "disabled (no --token-file)"}},
    )  # fmt: skip
    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        log.info("stopping", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    scheduler = BackgroundScheduler(timezone=UTC)
    now = datetime.now(UTC)
    every = service_settings_.tick_interval.total_seconds()
    scheduler.add_job(
        service.tick,
        "interval",
        seconds=every,
        next_run_time=now,
        max_instances=1,
        coalesce=True,
        id="loop",
    )
    scheduler.add_job(service.check_rules, "interval", seconds=service_settings_.rules_reload_interval.total_seconds(),
                      max_instances=1, coalesce=True, id="rules")  # fmt: skip
    scheduler.add_job(service.tick_alerts, "interval", seconds=min(30.0, service_settings_.heartbeat_interval.total_seconds()),
                      next_run_time=now, max_instances=1, coalesce=True, id="alerts")  # fmt: skip
    scheduler.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown(wait=True)
        service.stop()
        http.stop()
        source.close()
        cluster.close()
        print("stopped", file=sys.stderr, flush=True)
    return ExitCode.OK
