"""Preflight: check the cluster before an upgrade touches anything, and build the plan.

Why: a half-started upgrade at 1 a.m. is worse than none. Every problem found is listed in
one clear message (exit 2) and nothing is patched: target istiod ready with its injector,
tag present and on the expected old revision, namespaces present and using the tag,
gateways present. Prometheus and the rules are checked by the caller (they are not the
cluster's business).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from analyzer.core.mesh import MeshCluster, UnrollableWorkload
from analyzer.core.upgrade import (
    REVISION_LABEL,
    InconclusivePolicy,
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
    gateway_namespaces = {g.namespace for g in request.gateways}
    for gateway in request.gateways:
        if not cluster.workload_exists(gateway):
            problems.append(
                f"gateway {gateway.describe()} not found (set CANARY_UPGRADE__GATEWAYS, "
                "e.g. '[]' for none)"
            )
    if request.namespaces is None:
        namespaces = tuple(
            n for n in cluster.namespaces_labelled(request.tag) if n not in gateway_namespaces
        )
        if not namespaces:
            problems.append(f"no namespace is labelled {REVISION_LABEL}={request.tag}")
    else:
        namespaces = request.namespaces
        for name in namespaces:
            labels = cluster.namespace_labels(name)
            if labels is None:
                problems.append(f"unknown namespace {name}")
            elif labels.get(REVISION_LABEL) != request.tag:
                problems.append(
                    f"namespace {name} does not use tag {request.tag} ({REVISION_LABEL}="
                    f"{labels.get(REVISION_LABEL, '<unset>')})"
                )
        if len(set(namespaces)) != len(namespaces):
            problems.append("a namespace is listed twice in --namespaces")
    if not problems:
        unrollable = unrollable_check(
            cluster, (*request.gateways, *(Target(namespace=n) for n in namespaces)),
            request.exclude_unrollable,
        )  # fmt: skip
        (warnings if request.exclude_unrollable else problems).extend(unrollable)
    if problems:
        raise PreflightError(problems)
    return PreflightResult(
        from_revision=from_revision, namespaces=namespaces, warnings=tuple(warnings)
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
    request: UpgradeRequest, checked: PreflightResult, settings: Settings, now: datetime
) -> UpgradePlan:
    """The plan the state machine runs, from the request, preflight and settings."""
    upgrade = settings.upgrade
    windows = settings.windows
    try:
        waves = split_waves(checked.namespaces, upgrade.waves)
    except ValueError as error:
        raise BadInputError(f"CANARY_UPGRADE__WAVES: {error}") from None
    return UpgradePlan(
        upgrade_id=f"{request.to_revision}-{now:%Y%m%dT%H%M%S}",
        tag=request.tag,
        from_revision=checked.from_revision,
        to_revision=request.to_revision,
        style=request.style,
        gateways=request.gateways,
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
    )
