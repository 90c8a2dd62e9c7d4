"""Volume-free health gates: what the cluster says about a restarted namespace, whatever
its traffic — container restarts and crash loops since the restart, proxies not ready —
and an absolute cap on 5xx responses in its after-window.

Why it exists: a namespace serving almost nothing cannot show a regression in its request
metrics, but a crash-looping container or a proxy that never becomes ready shows in its
pods. ``core.quiet`` applies these gates to every judged namespace. Pure: pod documents as
the API returns them in, signals and findings out; the adapter lists the pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HealthSignals:
    """What the cluster says about a restarted namespace, whatever its traffic."""

    #: container restarts since the namespace's restart, over its restarted pods
    restarts: int = 0
    #: containers waiting in ``CrashLoopBackOff`` ("pod/container")
    crash_looping: tuple[str, ...] = ()
    #: restarted pods whose ``istio-proxy`` container is not ready
    proxies_not_ready: tuple[str, ...] = ()


#: The waiting reason the kubelet gives a container it backs off restarting (kubernetes
#: ``pkg/kubelet/container/sync_result.go``, ``ErrCrashLoopBackOff``).
CRASH_LOOP_REASON = "CrashLoopBackOff"
#: The sidecar's container name (istio ``manifests/charts/istio-control/istio-discovery/
#: files/injection-template.yaml``); an init container when Istio runs native sidecars.
PROXY_CONTAINER = "istio-proxy"


def pod_health(pods: Iterable[Mapping], since: datetime) -> HealthSignals:
    """One namespace's health from its pods as the API returns them (``status``
    ``containerStatuses`` and ``initContainerStatuses``): only pods created at or after
    ``since`` (the restart) and not terminating count."""
    restarts, looping, not_ready = 0, [], []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        created = meta.get("creationTimestamp")
        if meta.get("deletionTimestamp") or not created or _parse_time(created) < since:
            continue
        name = f"{meta.get('namespace')}/{meta.get('name')}"
        for container in (*(status.get("initContainerStatuses") or ()),
                          *(status.get("containerStatuses") or ())):  # fmt: skip
            restarts += int(container.get("restartCount") or 0)
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == CRASH_LOOP_REASON:
                looping.append(f"{name}/{container.get('name')}")
            if (
                container.get("name") == PROXY_CONTAINER
                and status.get("phase") == "Running"
                and not container.get("ready")
            ):
                not_ready.append(name)
    return HealthSignals(restarts, tuple(looping), tuple(not_ready))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class HealthGates:
    """Limits of the volume-free gates."""

    #: more container restarts than this since the restart fail the namespace
    max_restarts: int = 2
    #: more 5xx responses than this in the after-window, making more than
    #: ``max_error_share_after`` of its requests: a quiet namespace is never passed
    max_errors_after: int = 10
    max_error_share_after: float = 0.03


def gate_problems(
    signals: HealthSignals | None,
    errors_after: tuple[float, float] | None,
    gates: HealthGates,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(failures, holds)``: gate findings that fail the namespace, and those that only
    keep a quiet namespace from passing (the 5xx cap: counts, not a test).
    ``errors_after``: 5xx responses and requests in the after-window."""
    failures: list[str] = []
    if signals is not None:
        if signals.crash_looping:
            failures.append(f"crash loop since the restart: {', '.join(signals.crash_looping[:5])}")
        if signals.restarts > gates.max_restarts:
            failures.append(
                f"{signals.restarts} container restarts since the restart "
                f"(gate allows {gates.max_restarts})"
            )
        if signals.proxies_not_ready:
            failures.append(f"proxy not ready: {', '.join(signals.proxies_not_ready[:5])}")
    holds = []
    if errors_after is not None:
        errors, requests = errors_after
        if errors > gates.max_errors_after and errors > gates.max_error_share_after * requests:
            holds.append(
                f"{errors:.0f} 5xx responses of {requests:.0f} in the after-window (cap "
                f"{gates.max_errors_after} and {gates.max_error_share_after:.0%})"
            )
    return tuple(failures), tuple(holds)
