"""Alerts through a REAL Alertmanager on loopback to a webhook receiver: what on-call gets.

Alertmanager routes everything to the receiver with ``group_wait: 0s`` and a 1 s group
interval; tests poll the receiver (or Alertmanager's API) with a deadline, never sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from analyzer.adapters.alertmanager import AlertmanagerNotifier
from analyzer.core.alerts import Alert, NotificationError
from analyzer.core.alerts import builders as build
from analyzer.core.upgrade import UpgradeIdentity
from analyzer.service.alerting import AlertDispatcher
from tests.fixtures.alertmanager_server import AlertmanagerServer
from tests.fixtures.alerts import AM_PATH, failing_verdict
from tests.fixtures.polling import wait_until
from tests.fixtures.prometheus_server import free_port
from tests.fixtures.webhook_receiver import Post, WebhookReceiver


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def rollback(namespace: str, now: datetime) -> Alert:
    return build.rollback_started(
        failing_verdict(namespace),
        upgrade=UpgradeIdentity(
            "1-14-6", "1-15-4", "default", link="http://canary-analyzer.example/report/u-7"
        ),
        now=now,
        moved=(namespace,),
    )


def notification_for(namespace: str, status: str):
    """Predicate: an Alertmanager webhook POST with ``status`` holding our namespace."""

    def match(post: Post) -> bool:
        body = post.body
        return (
            isinstance(body, dict)
            and body.get("status") == status
            and any(
                a["labels"].get("namespace") == namespace and a["status"] == status
                for a in body.get("alerts", [])
            )
        )

    return match


def our_alert(post: Post, namespace: str) -> dict:
    return next(a for a in post.body["alerts"] if a["labels"].get("namespace") == namespace)


def test_rollback_arrives_as_critical_with_namespace_rule_revision_and_values(
    alertmanager: AlertmanagerServer, receiver: WebhookReceiver, namespace: str
):
    dispatcher = AlertDispatcher([AlertmanagerNotifier(alertmanager.url, timeout=5)], WallClock())
    report = dispatcher.fire(rollback(namespace, datetime.now(UTC)))
    assert report.ok, report.failed

    post = receiver.wait_for(
        notification_for(namespace, "firing"), path=AM_PATH, message="firing rollback"
    )
    alert = our_alert(post, namespace)
    labels = alert["labels"]
    assert labels["alertname"] == "CanaryAnalyzerRollbackStarted"
    assert labels["severity"] == "critical"
    assert labels["namespace"] == namespace
    assert labels["rule"] == "error-rate"
    assert labels["revision"] == "1-15-4" and labels["from_revision"] == "1-14-6"
    description = alert["annotations"]["description"]
    assert "before 0.01 → after 0.05" in description
    assert "1.00% → 5.00%" in description
    assert "before requests 12000" in description and "p-value: 1e-12" in description
    assert alert["annotations"]["report_url"] == "http://canary-analyzer.example/report/u-7"
    assert alert["generatorURL"] == "http://canary-analyzer.example/report/u-7"


def test_resolve_is_delivered_as_resolved(
    alertmanager: AlertmanagerServer, receiver: WebhookReceiver, namespace: str
):
    dispatcher = AlertDispatcher([AlertmanagerNotifier(alertmanager.url, timeout=5)], WallClock())
    alert = rollback(namespace, datetime.now(UTC))
    dispatcher.fire(alert)
    receiver.wait_for(notification_for(namespace, "firing"), path=AM_PATH, message="firing")

    report = dispatcher.resolve(alert.identity())
    assert report.ok, report.failed
    post = receiver.wait_for(
        notification_for(namespace, "resolved"), path=AM_PATH, message="resolved rollback"
    )
    resolved = our_alert(post, namespace)
    assert resolved["labels"]["severity"] == "critical"
    assert resolved["labels"]["rule"] == "error-rate"
    assert dispatcher.firing() == []


def test_heartbeat_is_visible_in_alertmanager_api(alertmanager: AlertmanagerServer):
    dispatcher = AlertDispatcher(
        [AlertmanagerNotifier(alertmanager.url, timeout=5)],
        WallClock(),
        heartbeat_interval=timedelta(minutes=1),
        instance="test-heartbeat",
    )
    report = dispatcher.tick()  # first tick: the heartbeat is due
    assert report.ok, report.failed

    def visible() -> list[dict]:
        return alertmanager.alerts(alertname="CanaryAnalyzerHeartbeat", instance="test-heartbeat")

    (beat,) = wait_until(visible, timeout=10, message="heartbeat in /api/v2/alerts")
    assert beat["status"]["state"] == "active"
    assert beat["labels"]["severity"] == "none"
    ends_at = datetime.fromisoformat(beat["endsAt"].replace("Z", "+00:00"))
    assert ends_at > datetime.now(UTC)  # stays firing until the service stops beating


def test_unreachable_sink_fails_and_logs_without_stopping_the_other(
    alertmanager: AlertmanagerServer, receiver: WebhookReceiver, namespace: str, alert_logs
):
    dead = AlertmanagerNotifier(
        f"http://127.0.0.1:{free_port()}",
        timeout=2,
        attempts=2,
        backoff=0.01,
        bearer_token="t0ps3cret",
    )
    dead.name = "unreachable"
    live = AlertmanagerNotifier(alertmanager.url, timeout=5)
    dispatcher = AlertDispatcher([dead, live], WallClock())
    report = dispatcher.fire(rollback(namespace, datetime.now(UTC)))

    assert report.delivered == ("alertmanager",)
    assert "did not accept the alerts after 2 attempt(s)" in report.failed["unreachable"]
    assert dispatcher.failed_total["unreachable"] == 1
    assert dispatcher.sent_total["alertmanager"] == 1
    receiver.wait_for(notification_for(namespace, "firing"), path=AM_PATH, message="alert")
    failures = [r for r in alert_logs if r.getMessage() == "notification sink failed"]
    assert failures and failures[0].fields["sink"] == "unreachable"
    everything = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in alert_logs)
    assert "t0ps3cret" not in everything and "t0ps3cret" not in repr(dead)


class StuckSink:
    """A sink that hangs until released: the worst case for the others."""

    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def send(self, alerts: Sequence[Alert]) -> None:
        self.entered.set()
        if not self.release.wait(timeout=30):
            raise NotificationError("stuck sink never released")


def test_a_hanging_sink_does_not_delay_delivery_to_alertmanager(
    alertmanager: AlertmanagerServer, receiver: WebhookReceiver, namespace: str
):
    stuck = StuckSink()
    dispatcher = AlertDispatcher(
        [stuck, AlertmanagerNotifier(alertmanager.url, timeout=5)], WallClock()
    )
    reports = []
    firing = threading.Thread(
        target=lambda: reports.append(dispatcher.fire(rollback(namespace, datetime.now(UTC))))
    )
    firing.start()
    try:
        # on-call is paged while the other sink still hangs
        receiver.wait_for(notification_for(namespace, "firing"), path=AM_PATH, message="alert")
        assert stuck.entered.is_set() and not reports
    finally:
        stuck.release.set()
        firing.join(timeout=30)
    assert set(reports[0].delivered) == {"stuck", "alertmanager"}


def test_retries_server_errors_sends_auth_and_gives_up_on_rejection(receiver: WebhookReceiver):
    delays: list[float] = []
    notifier = AlertmanagerNotifier(
        receiver.url + "/flaky",
        timeout=5,
        attempts=3,
        backoff=0.5,
        bearer_token="abc123",
        headers={"X-Scope-OrgID": "team-a"},
        sleep=delays.append,
    )
    path = "/flaky/api/v2/alerts"
    now = datetime.now(UTC)
    receiver.fail_next(path, 503, times=2)
    notifier.send([rollback("retry-ns", now)])
    posts = receiver.posts(path)
    assert len(posts) == 3 and delays == [0.5, 1.0]
    assert posts[-1].headers["Authorization"] == "Bearer abc123"
    assert posts[-1].headers["X-Scope-OrgID"] == "team-a"
    item = posts[-1].body[0]
    assert item["labels"]["namespace"] == "retry-ns" and "endsAt" not in item
    assert item["startsAt"].endswith("Z")

    receiver.fail_next(path, 400)
    with pytest.raises(NotificationError, match="rejected the alerts: HTTP 400") as caught:
        notifier.send([rollback("retry-ns", now).resolved(now)])
    assert "abc123" not in str(caught.value)
    assert len(receiver.posts(path)) == 4  # a rejection is not retried
    assert "endsAt" in receiver.posts(path)[-1].body[0]
