"""Preflight: check the cluster before an upgrade touches anything, and build the plan.

Why: a half-started upgrade at 1 a.m. is worse than none. Every problem found is listed in
one clear message (exit 2) and nothing is patched: target istiod ready with its injector,
tag present and on the expected old revision, namespaces present and using the tag,
gateways present. Prometheus and the rules are checked by the caller (they are not the
cluster's business).

What is planned is what the tag reaches (``core.reach``: its webhooks' namespace and object
selectors, as the API server evaluates them), not only the namespaces labelled
``istio.io/rev=<tag>``: every namespace the tag reaches whole, and in namespaces it reaches
only through pod labels, only those workloads. What cannot be handled is refused with the
command that fixes it; what the tag reaches but the plan leaves out is said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from analyzer.core.plan_order import order_by_evidence
from analyzer.core.ports import (
    ClusterError,
    ClusterUnreachableError,
    MeshCluster,
    UnrollableWorkload,
)
from analyzer.core.reach import INJECTION_LABEL, Reach, SelectorError, compute_reach
from analyzer.core.upgrade import (
    REVISION_LABEL,
    InconclusivePolicy,
    LookPolicy,
    Target,
    UpgradePlan,
    UpgradeStyle,
    split_waves,
)
from analyzer.errors import BadInputError
from analyzer.settings import Settings


class PreflightError(BadInputError):
    """One or more preflight checks failed; the message lists each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("preflight failed, nothing was changed:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class UpgradeRequest:
    """What the user asked for (flags over settings)."""

    to_revision: str
    tag: str
    style: UpgradeStyle
    gateways: tuple[Target, ...]
    from_revision: str | None = None
    namespaces: tuple[str, ...] | None = None
    #: proceed although some workloads cannot be rolled by a restart: they are left out of
    #: restarts and checks and reported (``--exclude-unrollable``)
    exclude_unrollable: bool = False


@dataclass(frozen=True)
class PreflightResult:
    from_revision: str
    namespaces: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    #: in namespaces the tag reaches only through pod labels: the workloads to restart
    targets: tuple[Target, ...] = ()
    #: the gateways to restart (the configured ones less those pinned to a revision)
    gateways: tuple[Target, ...] | None = None
    #: what the tag reaches, for the operator (None when it could not be worked out)
    reach: Reach | None = None


def parse_gateway(text: str) -> Target:
    """``istio-ingress/istio-ingressgateway`` → the gateway Deployment."""
    namespace, _, name = text.partition("/")
    if not namespace or not name:
        raise BadInputError(f"gateway {text!r} is not namespace/name")
    return Target(namespace=namespace, kind="Deployment", name=name)


def preflight(cluster: MeshCluster, request: UpgradeRequest) -> PreflightResult:
    """Check everything; raise ``PreflightError`` listing every problem."""
    problems: list[str] = []
    warnings: list[str] = []
    revisions = cluster.revisions()
    target = revisions.get(request.to_revision)
    known = ", ".join(sorted(revisions)) or "none"
    if target is None:
        problems.append(
            f"unknown revision {request.to_revision}: no istiod-{request.to_revision} "
            f"Deployment (known revisions: {known})"
        )
    else:
        if not target.ready:
            problems.append(f"istiod revision {request.to_revision} is not ready ({target.detail})")
        if not target.injector:
            problems.append(
                f"revision {request.to_revision} has no injector MutatingWebhookConfiguration"
            )
    tags = cluster.tags()
    tag = tags.get(request.tag)
    from_revision = request.from_revision or (tag.revision if tag else "")
    if tag is None:
        problems.append(
            f"tag {request.tag} not found (no MutatingWebhookConfiguration "
            f"istio-revision-tag-{request.tag}; tags: {', '.join(sorted(tags)) or 'none'})"
        )
    else:
        warnings.extend(tag.warnings)
        if tag.revision == request.to_revision:
            problems.append(f"tag {request.tag} already points at {request.to_revision}")
        elif request.from_revision and tag.revision != request.from_revision:
            problems.append(
                f"tag {request.tag} points at {tag.revision}, not at --from-revision "
                f"{request.from_revision}"
            )
    if request.from_revision and request.from_revision not in revisions:
        problems.append(f"unknown --from-revision {request.from_revision} (known: {known})")
    reach: Reach | None = None
    if tag is not None:
        try:
            reach = compute_reach(cluster.reach_inputs(request.tag))
        except ClusterUnreachableError:
            raise
        except (ClusterError, SelectorError) as error:
            problems.append(f"cannot work out what tag {request.tag} reaches: {error}")
    gateways = _check_gateways(cluster, request, reach, problems, warnings)
    gateway_namespaces = {g.namespace for g in request.gateways}
    namespaces: tuple[str, ...] = ()
    if reach is not None:
        namespaces = _choose_namespaces(cluster, request, reach, gateway_namespaces, problems,
                                        warnings)  # fmt: skip
        if request.style is UpgradeStyle.NAMESPACE_LABEL:
            _check_label_style(request, reach, sorted(gateway_namespaces), namespaces, problems)
    if problems:
        raise PreflightError(problems)
    targets: tuple[Target, ...] = ()
    if reach is not None:
        partial = [r for n in namespaces if (r := reach.get(n)) is not None and not r.whole]
        targets = tuple(t for r in partial for t in r.targets())
    restarted = (
        *(request.gateways if gateways is None else gateways),
        *(Target(namespace=n) for n in namespaces if not any(t.namespace == n for t in targets)),
        *targets,
    )
    unrollable = unrollable_check(cluster, restarted, request.exclude_unrollable)
    if unrollable and not request.exclude_unrollable:
        raise PreflightError(unrollable)
    warnings.extend(unrollable)
    return PreflightResult(
        from_revision=from_revision,
        namespaces=namespaces,
        warnings=tuple(warnings),
        targets=targets,
        gateways=gateways,
        reach=reach,
    )


def _check_gateways(
    cluster: MeshCluster,
    request: UpgradeRequest,
    reach: Reach | None,
    problems: list[str],
    warnings: list[str],
) -> tuple[Target, ...]:
    """The configured gateways that exist and follow the tag; a gateway pinned to a revision
    by its own ``istio.io/rev`` label is left out (restarting it would not move it)."""
    kept = []
    for gateway in request.gateways:
        if not cluster.workload_exists(gateway):
            problems.append(
                f"gateway {gateway.describe()} not found (set CANARY_UPGRADE__GATEWAYS, "
                "e.g. '[]' for none)"
            )
            continue
        pinned = reach.pinned_workload(gateway) if reach is not None else None
        if pinned is not None:
            warnings.append(
                f"gateway {gateway.describe()} is pinned to {REVISION_LABEL}={pinned.value} by "
                f"its pod labels and does not follow tag {request.tag}: not restarted by this "
                "upgrade (move it with its own revision)"
            )
            continue
        if (
            reach is not None
            and request.style is UpgradeStyle.TAG
            and reach.workload(gateway) is None
        ):
            problems.append(
                f"gateway {gateway.describe()} is not reached by tag {request.tag}: a restart "
                f"would not give it {request.to_revision} (label its namespace "
                f"{REVISION_LABEL}={request.tag}, or its pod template sidecar.istio.io/inject="
                f"true or {REVISION_LABEL}={request.tag})"
            )
            continue
        kept.append(gateway)
    return tuple(kept)


def _choose_namespaces(
    cluster: MeshCluster,
    request: UpgradeRequest,
    reach: Reach,
    gateway_namespaces: set[str],
    problems: list[str],
    warnings: list[str],
) -> tuple[str, ...]:
    """Every namespace the tag reaches with something to restart, or the ``--namespaces``
    subset (checked, and the reached namespaces it leaves out named)."""
    movable = [n.name for n in reach.namespaces if n.name not in gateway_namespaces and n.targets()]
    if request.namespaces is None:
        if not movable:
            problems.append(
                f"tag {request.tag} reaches no namespace with a Deployment, StatefulSet or "
                f"DaemonSet to restart (no namespace labelled {REVISION_LABEL}={request.tag})"
            )
        return tuple(movable)
    namespaces = request.namespaces
    for name in namespaces:
        labels = cluster.namespace_labels(name)
        reached = reach.get(name)
        if labels is not None and reached is not None and reached.targets():
            continue
        if labels is None:
            problems.append(f"unknown namespace {name}")
        elif reached is None:
            problems.append(
                f"namespace {name} is not reached by tag {request.tag} ({REVISION_LABEL}="
                f"{labels.get(REVISION_LABEL, '<unset>')}, {INJECTION_LABEL}="
                f"{labels.get(INJECTION_LABEL, '<unset>')}, and no pod template selected by "
                "its webhooks)"
            )
        else:
            problems.append(
                f"namespace {name}: tag {request.tag} reaches only pods no Deployment, "
                f"StatefulSet or DaemonSet owns ({', '.join(reached.unowned)}): nothing to restart"
            )
    if len(set(namespaces)) != len(namespaces):
        problems.append("a namespace is listed twice in --namespaces")
    left_out = [n for n in movable if n not in namespaces]
    if left_out:
        if request.style is UpgradeStyle.TAG:
            effect = (
                f"their new pods (any restart, reschedule or scale-up) get {request.to_revision} "
                "as soon as the tag moves, unjudged; a rollback restarts those found on it"
            )
        else:
            effect = (
                f"they keep {REVISION_LABEL}={request.tag}, and their pods get "
                f"{request.to_revision} at their next restart after the tag moves at the end"
            )
        warnings.append(
            f"--namespaces leaves out namespaces tag {request.tag} reaches: "
            f"{', '.join(left_out)}; {effect}"
        )
    return namespaces


def _check_label_style(
    request: UpgradeRequest,
    reach: Reach,
    gateway_namespaces: Sequence[str],
    namespaces: Sequence[str],
    problems: list[str],
) -> None:
    """The namespace-label style relabels namespaces ``istio.io/rev=<revision>``: that moves
    a namespace only if the revision's own ``rev.namespace`` webhook then selects it, which
    needs ``istio-injection`` absent (istio-discovery ``templates/mutatingwebhook.yaml``), and
    it moves whole namespaces, not single workloads (a gateway's namespace is relabelled for
    its gateway alone)."""
    for name in dict.fromkeys((*gateway_namespaces, *namespaces)):
        reached = reach.get(name)
        if reached is None:
            continue
        if INJECTION_LABEL in reached.labels:
            problems.append(
                f"namespace {name} is labelled {INJECTION_LABEL}="
                f"{reached.labels[INJECTION_LABEL]}: the revision's own webhook never selects "
                f"it ({REVISION_LABEL}={request.to_revision} would change nothing). Put it on "
                f"the tag first: kubectl label namespace {name} {INJECTION_LABEL}- "
                f"{REVISION_LABEL}={request.tag}"
            )
        elif not reached.whole and name not in gateway_namespaces:
            problems.append(
                f"namespace {name} is reached only through pod labels ({reached.why}); the "
                "namespace-label style moves whole namespaces: use --style tag, or leave it "
                "out with --namespaces"
            )


def unrollable_check(
    cluster: MeshCluster, targets: Sequence[Target], excluded: bool
) -> list[str]:
    """Name every workload a restart would not move onto the new proxy — OnDelete and
    partitioned StatefulSets/DaemonSets (kubectl counts them as rolled out while their pods
    stay), workloads owned by another controller, pods of non-standard controllers — and
    say what happens to it: refused with the command that fixes it, or (``excluded``) left
    alone, never waited on, and reported as not restarted."""
    found: list[UnrollableWorkload] = cluster.unrollable_workloads(targets)
    if excluded:
        return [
            f"{w.describe()}; excluded (--exclude-unrollable): not restarted, not waited on, "
            "its pods reported as not restarted"
            for w in found
        ]
    return [
        f"{w.describe()}; a restart would leave its pods on the old proxy. Fix: {w.fix}; "
        "or rerun with --exclude-unrollable (CANARY_UPGRADE__EXCLUDE_UNROLLABLE=true) to "
        "upgrade without it"
        for w in found
    ]


def build_plan(
    request: UpgradeRequest,
    checked: PreflightResult,
    settings: Settings,
    now: datetime,
    forecast: Mapping[str, float] | None = None,
    needed: int = 0,
) -> UpgradePlan:
    """The plan the state machine runs, from the request, preflight and settings. With
    ``forecast`` (requests per window in the same hours of previous nights) and
    ``upgrade.order`` evidence, the namespaces are ordered by it (``core.quiet``): those
    reaching ``needed`` busiest first, the pinned ``upgrade.canary`` first of all."""
    upgrade = settings.upgrade
    windows = settings.windows
    namespaces = checked.namespaces
    if forecast is not None and upgrade.order == "evidence":
        namespaces = order_by_evidence(namespaces, forecast, needed, upgrade.canary)
    elif upgrade.canary in namespaces:
        namespaces = (upgrade.canary, *(n for n in namespaces if n != upgrade.canary))
    try:
        waves = split_waves(namespaces, upgrade.waves)
    except ValueError as error:
        raise BadInputError(f"CANARY_UPGRADE__WAVES: {error}") from None
    return UpgradePlan(
        upgrade_id=f"{request.to_revision}-{now:%Y%m%dT%H%M%S}",
        tag=request.tag,
        from_revision=checked.from_revision,
        to_revision=request.to_revision,
        style=request.style,
        gateways=request.gateways if checked.gateways is None else checked.gateways,
        waves=waves,
        before=windows.before,
        settle=windows.settle,
        after=windows.after,
        step=windows.step,
        evaluation_delay=upgrade.evaluation_delay,
        rollout_timeout=upgrade.rollout_timeout,
        poll_interval=upgrade.poll_interval,
        max_extensions=upgrade.max_extensions,
        on_inconclusive=InconclusivePolicy(upgrade.on_inconclusive),
        looks=LookPolicy(upgrade.looks),
        workloads=checked.targets,
    )
