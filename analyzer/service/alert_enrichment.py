"""One enrichment step where alerts leave the service for the notification sinks.

Why: on-call routes and silences by cluster and team, and opens the runbook from the page.
Every alert the product sends therefore carries a ``cluster`` label, the operator's static
labels (``notifications.labels``) and a ``runbook_url`` annotation pointing at the alert's
own section of docs/oncall.md (``notifications.runbook_base_url`` + ``#`` + the section's
anchor). Done here, once, by wrapping each sink: the builders in core and the dispatcher's
identities (firing, resolving) stay as they are, and every sink sees the same enriched alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from analyzer.core.alerts import Alert, Notifier


def runbook_anchor(alert_name: str) -> str:
    """The anchor of the alert's section in docs/oncall.md (``### <AlertName>`` headings):
    the heading text lower-cased, as GitHub and most Markdown renderers slug it."""
    return alert_name.lower()


def enrich(
    alert: Alert,
    *,
    cluster: str | None,
    labels: Mapping[str, str],
    runbook_base_url: str,
) -> Alert:
    """``alert`` with the static labels, ``cluster`` and ``runbook_url`` added.

    The alert's own labels win over static ones (a static ``namespace`` cannot hide the
    namespace that failed)."""
    merged = {**labels, **({"cluster": cluster} if cluster else {}), **alert.labels}
    runbook = f"{runbook_base_url.rstrip('#')}#{runbook_anchor(alert.name.value)}"
    return replace(alert, labels=merged, annotations={**alert.annotations, "runbook_url": runbook})


class EnrichingNotifier:
    """A sink that enriches each alert before handing it to the sink it wraps."""

    def __init__(self, inner: Notifier, **enrichment: Any) -> None:
        self.inner = inner
        self.enrichment = enrichment

    def send(self, alerts: Sequence[Alert]) -> None:
        self.inner.send([enrich(alert, **self.enrichment) for alert in alerts])

    def __getattr__(self, name: str) -> Any:  # name, repeats, heartbeats, close, …
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"EnrichingNotifier({self.inner!r})"


def enriched(
    sinks: Sequence[Notifier],
    *,
    cluster: str | None,
    labels: Mapping[str, str],
    runbook_base_url: str,
) -> list[Notifier]:
    """Every sink wrapped with the same enrichment."""
    return [
        EnrichingNotifier(
            sink, cluster=cluster, labels=dict(labels), runbook_base_url=runbook_base_url
        )
        for sink in sinks
    ]


def cluster_label(configured: str | None, target: Any) -> str | None:
    """The ``cluster`` label: the setting, else the cluster the kubeconfig context names."""
    return configured or (getattr(target, "cluster", None) if target is not None else None)


def notification_sinks(notifications: Any, target: Any) -> list[Notifier]:
    """The configured sinks (``notifications`` settings), each enriched for ``target``."""
    from analyzer.service.alerting import notifiers_from_urls

    return enriched(
        notifiers_from_urls(notifications.alertmanager_url, notifications.webhook_url),
        cluster=cluster_label(notifications.cluster, target),
        labels=notifications.labels,
        runbook_base_url=notifications.runbook_base_url,
    )
