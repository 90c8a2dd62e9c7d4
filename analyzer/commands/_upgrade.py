"""The ``upgrade`` command's implementation, imported only when it runs (fast ``--help``).

The ``upgrade`` subcommand: run one whole upgrade now, in the foreground, with progress.

Wires the real adapters (Kubernetes, Prometheus, state ConfigMap) to the engine. Rerunning
the same command after a crash resumes the recorded upgrade. Exit codes: 0 promoted ·
1 rolled back (or a rollback that could not finish) · 2 bad input / preflight failed ·
3 held (inconclusive) · 4 cluster or Prometheus unreachable · 70 internal error.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console

from analyzer.adapters.kubeconfig import KubeTarget
from analyzer.adapters.kubernetes import ConfigMapStateStore, KubernetesCluster
from analyzer.adapters.lease import KubernetesLease
from analyzer.adapters.prometheus import PrometheusSource
from analyzer.commands.common import (
    load_rule_set,
    print_document,
    settings_from_args,
    structured,
)
from analyzer.core.ports import (
    ClusterError,
    ClusterNotFoundError,
    ClusterUnreachableError,
    MetricsUnreachableError,
)
from analyzer.core.reach import Reach
from analyzer.core.templates import TemplateError, validate_namespace
from analyzer.core.upgrade import (
    Action,
    Note,
    Outcome,
    UpgradeState,
    UpgradeStyle,
    UpgradeSummary,
    summary,
)
from analyzer.errors import BadInputError, ExitCode, UnreachableError
from analyzer.service.alert_enrichment import notification_sinks
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.analysis import parse_namespace_list
from analyzer.service.clock import RealClock, VirtualClock
from analyzer.service.engine import (
    DryRunCluster,
    DryRunJudging,
    LogNotifier,
    MemoryStateStore,
    UpgradeEngine,
)
from analyzer.service.forecast import night_outlook
from analyzer.service.history import RestartHistory, history_path
from analyzer.service.judging import PrometheusJudging
from analyzer.service.leadership import LeaderElector, holding_lease, lease_namespace
from analyzer.service.night_plan import plan_night
from analyzer.service.preflight import UpgradeRequest, parse_gateway, preflight
from analyzer.service.timeline import TimelineRecorder
from analyzer.views.reports import write_upgrade_report

OUTCOME_EXIT = {
    Outcome.PROMOTED: ExitCode.OK,
    Outcome.ROLLED_BACK: ExitCode.REGRESSION,
    Outcome.FAILED: ExitCode.REGRESSION,
    Outcome.HELD: ExitCode.INCONCLUSIVE,
}


class Progress:
    """Progress on stderr with rich: one line per action and per note."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet

    def __call__(self, state: UpgradeState, notes: Sequence[Note], pending: Action | None) -> None:
        if self.quiet:
            return
        for note in notes:
            style = "yellow" if note.warning else "green"
            where = f"{note.namespace}: " if note.namespace else ""
            self.console.print(f"[{style}]•[/] {where}{note.message}")
        if pending is not None:
            self.console.print(f"  [dim]{state.stage.value}: {_describe(pending)}[/]")


def _describe(action: Action) -> str:
    data = action.model_dump(mode="json", exclude={"kind"})
    if "targets" in data:
        data["targets"] = [
            "/".join(x for x in (t["namespace"], t.get("name")) if x) for t in data["targets"]
        ]
    if action.kind == "judge":
        data = {"judged": data["judged"], "controls": data["controls"]}
    return f"{action.kind} {json.dumps(data)}"


def _request(args: argparse.Namespace, settings) -> UpgradeRequest:
    upgrade = settings.upgrade
    try:
        names = parse_namespace_list(args.namespaces)
        namespaces = tuple(validate_namespace(n) for n in names) if args.namespaces else None
        tag = validate_namespace(args.tag or upgrade.tag)
        to_revision = validate_namespace(args.to_revision)
        from_revision = validate_namespace(args.from_revision) if args.from_revision else None
    except TemplateError as error:
        raise BadInputError(str(error)) from None
    return UpgradeRequest(
        to_revision=to_revision,
        from_revision=from_revision,
        tag=tag,
        style=UpgradeStyle(args.style or upgrade.style),
        gateways=tuple(parse_gateway(g) for g in upgrade.gateways),
        namespaces=namespaces,
        exclude_unrollable=bool(args.exclude_unrollable) or upgrade.exclude_unrollable,
    )


def upgrade_command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    request = _request(args, settings)
    rules = load_rule_set(settings)
    source = PrometheusSource(settings.prometheus)
    try:
        source.ping()
    except MetricsUnreachableError as error:
        source.close()
        raise UnreachableError(f"Prometheus unreachable: {error}") from None
    try:
        cluster = KubernetesCluster.from_settings(
            settings.kubernetes, settings.upgrade.istio_namespace
        )
    except ClusterNotFoundError as error:
        source.close()
        raise BadInputError(str(error)) from None
    try:
        return _run(args, settings, request, rules, source, cluster)
    except ClusterUnreachableError as error:
        raise UnreachableError(f"cluster unreachable: {error}") from None
    except ClusterError as error:
        raise BadInputError(f"cluster refused: {error}") from None
    finally:
        source.close()
        cluster.close()


def _run(args, settings, request, rules, source, cluster) -> int:
    progress = Progress(quiet=False)
    recorder = TimelineRecorder()
    service = settings.service  # the restart history analyze --last reads, as serve writes it
    history = RestartHistory(history_path(service.history_file, service.reports_dir))

    def observe(state: UpgradeState, notes: Sequence[Note], pending: Action | None) -> None:
        progress(state, notes, pending)
        recorder(state, notes, pending)
        history.observe(state)

    upgrade = settings.upgrade
    store = ConfigMapStateStore(cluster, upgrade.state_configmap, upgrade.state_namespace)
    judging = PrometheusJudging(
        source,
        rules,
        settings.rules.namespace_label,
        night_budget=settings.rules.night_budget,
        health=lambda action: cluster.pod_health(action.judged, action.restarted_at),
    )
    sinks = notification_sinks(settings.notifications, cluster.target)
    # every page is also logged; a rollback-started page is resolved when the rollback ends
    notifier = AlertDispatcher([LogNotifier(), *sinks], RealClock())
    engine = UpgradeEngine(
        cluster, store, judging, RealClock(), notifier=notifier, observer=observe
    )
    if cluster.target is not None:
        progress.console.print(f"acting on {cluster.target.line()}", markup=False)
    resumed = None if args.dry_run else engine.resumable()
    if resumed is not None and (resumed.plan.tag, resumed.plan.to_revision) == (
        request.tag,
        request.to_revision,
    ):
        progress.console.print(
            f"[bold]resuming[/] upgrade {resumed.plan.upgrade_id} at {resumed.stage.value}"
        )
        plan = None
        reach = None
        opening = ()
    else:
        checked = preflight(cluster, request)  # reads only: a refusal changes nothing
        reach = checked.reach
        for line in reach.lines() if reach is not None else ():
            progress.console.print(line, markup=False)
        now = RealClock().now()
        outlook = night_outlook(source, rules, settings, checked.namespaces, now)
        for warning in (*checked.warnings, *outlook.warnings):
            progress.console.print(f"[yellow]warning:[/] {warning}")
        night = plan_night(request, checked, settings, now, outlook)  # as ``serve`` plans
        for each in night.forecast:
            progress.console.print(f"forecast: {each.describe()}", markup=False)
        plan = night.plan
        if args.dry_run:
            clock = VirtualClock(now)
            dry = DryRunCluster(cluster, clock)
            engine = UpgradeEngine(
                dry, MemoryStateStore(), DryRunJudging(), clock, observer=progress
            )
            state = engine.run(plan)
            _print(args, state, writes=dry.writes, reach=reach, target=cluster.target)
            return ExitCode.OK
        opening = night.notes()  # the timeline opens with them, as the service's does
    with _lease_held(cluster, settings) as gate:
        for note in opening:
            recorder.add(note, RealClock().now())
        state = engine.run(plan, gate=gate)
    if args.report:
        try:
            path = write_upgrade_report(
                args.report, UpgradeSummary.of(state), recorder.timeline
            )
        except OSError as error:
            raise BadInputError(f"--report: cannot write {args.report}: {error.strerror}") from None
        progress.console.print(f"report: {path}")
    _print(args, state, reach=reach, target=cluster.target)
    assert state.outcome is not None
    return OUTCOME_EXIT[state.outcome]


@contextmanager
def _lease_held(cluster, settings) -> Iterator[Callable[[UpgradeState], None]]:
    """Hold the service's Lease while acting, so a running service and this command never
    act at once. The identity is per host: a rerun after ``kill -9`` takes its own lease back."""
    lease = KubernetesLease(
        cluster.api_client,
        lease_namespace(settings),
        settings.service.lease_name,
        request_timeout=settings.kubernetes.request_timeout.total_seconds(),
    )
    elector = LeaderElector(
        lease, f"upgrade-cli@{socket.gethostname()}", settings.service.lease_duration
    )
    clock = RealClock()

    def still_leading(_state: UpgradeState) -> None:
        if not elector.is_leader(clock.now()):
            raise UnreachableError(
                "lost the lease (API server unreachable?); state is saved, rerun to resume"
            )

    with holding_lease(elector, clock.now):
        yield still_leading


def _print(
    args: argparse.Namespace,
    state: UpgradeState,
    writes: list[str] | None = None,
    reach: Reach | None = None,
    target: KubeTarget | None = None,
) -> None:
    document = summary(state)  # with the plan's forecast, on a resumed run too
    if target is not None:  # which cluster it acted on (or would act on)
        document["kubernetes"] = target.as_dict()
    if reach is not None:  # what the tag reached at preflight (absent on a resumed run)
        document["reach"] = reach.to_dict()
    if writes is not None:
        document["dry_run"] = True
        document["would_write"] = writes
    if structured(args.output):
        print_document(document, args.output)
        return
    out = sys.stdout
    if writes is not None:
        where = f" on {target.line()}" if target is not None else ""
        print(f"dry run{where}: nothing was changed. It would:", file=out)
        for line in writes:
            print(f"  - {line}", file=out)
    plan = state.plan
    outcome = state.outcome.value if state.outcome else None
    print(
        f"upgrade {plan.upgrade_id}: {outcome} (tag {plan.tag} "
        f"{plan.from_revision} → {plan.to_revision}, style {plan.style.value})",
        file=out,
    )
    if state.rollback_reason:
        print(f"  reason: {state.rollback_reason}", file=out)
    for record in state.namespaces:
        verdict = f" {record.verdict.value}" if record.verdict else ""
        print(f"  {record.name}: {record.state}{verdict} {record.reason}", file=out)
        for rule in record.rules:
            print(f"    {rule.verdict.value:<12} {rule.rule}: {rule.reason}")
