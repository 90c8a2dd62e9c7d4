"""Kubernetes Events about the namespaces an upgrade touches.

Why it exists: ``kubectl get events`` should tell what the upgrade did to a namespace. An
Event about a Namespace is about a cluster-scoped object, which the API server accepts only
in ``default`` with events.k8s.io/v1's required fields (docs/architecture.md, "Events about
namespaces"); they are written here, best effort.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from analyzer.adapters.kubernetes.api import ClusterApi
from analyzer.adapters.kubernetes.errors import ClusterRefusedError
from analyzer.adapters.lease import micro_time, send_json

log = logging.getLogger("canary_analyzer.kubernetes")

#: where Events about cluster-scoped objects (our Namespaces) are accepted and found
EVENTS_NAMESPACE = "default"
REPORTING_CONTROLLER = "canary-analyzer.io/upgrade"


class EventRecorder(ClusterApi):
    """events.k8s.io/v1 Events, one refusal logged per run."""

    def record_event(self, namespace: str, reason: str, message: str, warning: bool) -> None:
        """An events.k8s.io/v1 Event about the Namespace object.

        A Namespace is cluster-scoped, so the API server accepts an Event about it only in
        ``default`` (or ``kube-system``) — pkg/apis/core/validation/events.go,
        legacyValidateEvent — which is where client-go's recorders put them too
        (tools/events: cluster-scoped ``regarding`` → ``default``): ``kubectl get events -n
        default``. Events are best effort: a refusal is logged once at warning with the API
        server's message and not raised; an unreachable server raises ``ClusterError``."""
        now = datetime.now(UTC)
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"canary-analyzer.{namespace}.",
                "namespace": EVENTS_NAMESPACE,
            },
            "eventTime": micro_time(now),
            "regarding": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
            "reason": reason[:128],
            "action": reason[:128],
            "note": message[:1024],
            "type": "Warning" if warning else "Normal",
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.reporting_instance,
        }
        try:
            self.retry(
                f"event about namespace {namespace}",
                lambda: send_json(
                    self.api_client,
                    "POST",
                    f"/apis/events.k8s.io/v1/namespaces/{EVENTS_NAMESPACE}/events",
                    body,
                    self.timeout,
                ),
                attempts=2,
            )
        except ClusterRefusedError as error:
            if not self._event_refusal_logged:
                self._event_refusal_logged = True
                log.warning(
                    "the API server refuses our Events; none will be recorded this run",
                    extra={"fields": {"status": error.status, "message": error.api_message}},
                )
