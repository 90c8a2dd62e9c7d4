"""Restarting workloads as ``kubectl rollout restart`` does, and waiting for the rollout.

Why it exists: a wave's namespaces move to the new proxy by a restart; it must be stamped
and idempotent (``canary-analyzer.io/restart-step``, so a resumed step never restarts twice)
and its completion judged by kubectl's rules (``workloads.py``). Shadow mode reads the same
stamp to find restarts made by others.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from analyzer.adapters.kubernetes.api import KINDS, STRATEGIC, ClusterApi
from analyzer.adapters.kubernetes.errors import WorkloadPausedError
from analyzer.adapters.kubernetes.objects import meta_of
from analyzer.adapters.kubernetes.workloads import rollout_problem, unrollable
from analyzer.core.shadow import WorkloadTemplate
from analyzer.core.upgrade import RolloutStatus, Target

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_STEP = "canary-analyzer.io/restart-step"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class WorkloadRestarts(ClusterApi):
    """Restart, list restart stamps, and follow the rollout."""

    def restart(self, targets: Sequence[Target], step_id: str, at: datetime) -> datetime:
        """``kubectl rollout restart`` for each workload not already restarted by ``step_id``,
        stamped ``at`` (the caller's now: kubectl ``pkg/polymorphichelpers/objectrestarter.go``
        stamps ``time.Now()`` when it patches); a workload the step already restarted keeps
        its stamp, which is returned. Workloads a restart cannot roll are left alone."""
        times: list[datetime] = []
        stamp = _rfc3339(at)
        for target in targets:
            for kind, obj in self._workloads(target):
                meta = meta_of(obj)
                template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
                annotations = template.get("annotations") or {}
                if annotations.get(RESTART_STEP) == step_id:
                    previous = _parse_time(annotations.get(RESTARTED_AT, ""))
                    times.append(previous or at)
                    continue
                if unrollable(kind, obj) is not None:
                    continue  # left alone; its pods are reported as not restarted
                if kind == "Deployment" and (obj.get("spec") or {}).get("paused"):
                    raise WorkloadPausedError(
                        f"Deployment {meta.get('namespace')}/{meta.get('name')} is paused; "
                        "resume it (kubectl rollout resume) before upgrading"
                    )
                _, _, patch = self._workload_api(kind)
                body = {
                    "spec": {
                        "template": {
                            "metadata": {
                                "annotations": {RESTARTED_AT: stamp, RESTART_STEP: step_id}
                            }
                        }
                    }
                }
                self.retry(
                    f"restart {kind} {meta.get('namespace')}/{meta.get('name')}",
                    lambda p=patch, n=meta["name"], ns=meta["namespace"], b=body: self._json(
                        p, n, ns, b, _content_type=STRATEGIC
                    ),
                )
                times.append(_parse_time(stamp) or at)
        return min(times) if times else at

    def workload_templates(self, namespaces: Sequence[str]) -> list[WorkloadTemplate]:
        """Every Deployment, StatefulSet and DaemonSet of the namespaces, as shadow mode
        reads them (list only): ``metadata.generation`` and the pod template's
        ``restartedAt`` stamp (kubectl ``pkg/polymorphichelpers/objectrestarter.go``)."""
        found = []
        for namespace in namespaces:
            for kind in KINDS:
                listing, _, _ = self._workload_api(kind)
                for obj in self._items(f"list {kind} in {namespace}", listing, namespace):
                    meta = meta_of(obj)
                    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata")
                    stamp = ((template or {}).get("annotations") or {}).get(RESTARTED_AT, "")
                    found.append(
                        WorkloadTemplate(
                            namespace=namespace,
                            kind=kind,
                            name=str(meta.get("name")),
                            generation=int(meta.get("generation") or 0),
                            restarted_at=_parse_time(stamp) if stamp else None,
                        )
                    )
        return found

    def rollout_status(self, targets: Sequence[Target]) -> RolloutStatus:
        waiting: list[str] = []
        for target in targets:
            for kind, obj in self._workloads(target):
                if unrollable(kind, obj) is not None:
                    continue  # never restarted, never waited on
                complete, failed, detail = rollout_problem(kind, obj)
                if failed:
                    return RolloutStatus(complete=False, failed=failed, waiting=(detail,))
                if not complete:
                    waiting.append(detail)
        return RolloutStatus(complete=not waiting, waiting=tuple(waiting))
