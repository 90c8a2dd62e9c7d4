"""Deliver alerts to every configured sink, keep firing ones alive, resolve them, and beat.

Why: the engine and the service say *what* to tell once (``fire``, ``resolve``); on-call
needs more than one POST. Alertmanager forgets a firing alert after its
``resolve_timeout`` unless it is sent again, a sink may be down for a while and must get
the alert when it is back, a resolve must reach every sink that saw the alert, and a
dead-man's-switch heartbeat must keep arriving while the service is healthy.

Rules kept here:
- one failing or slow sink never stops the others: each delivery round sends to all sinks
  in parallel and catches every failure (logged, counted, retried on the next ``tick``);
- sinks that deduplicate (``repeats = True``, Alertmanager) get firing alerts again every
  ``resend_interval``; chat sinks (``repeats = False``) get each change once;
- nothing secret is logged (messages pass through ``redact``; notifiers never put headers
  into errors).

The service calls ``tick()`` from its scheduler (every ``resend_interval / 2`` or so); the
engine may use the dispatcher as its ``Notifier`` (``send``), or call ``fire``/``resolve``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from analyzer.adapters.alertmanager import AlertmanagerNotifier
from analyzer.adapters.webhook import WebhookNotifier
from analyzer.core.alerts import Alert, AlertName
from analyzer.core.alerts.builders import heartbeat
from analyzer.core.ports import NotificationError, Notifier
from analyzer.service.logs import redact

log = logging.getLogger("canary_analyzer.alerting")

Identity = tuple[str, tuple[tuple[str, str], ...]]
DeliveryCallback = Callable[[str, bool, int], None]
"""Called after each delivery attempt to a sink: (sink name, delivered?, number of alerts)."""


class _HasNow(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery round did: sinks that took the alerts, and why the others did not."""

    delivered: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Seen:
    firing: bool
    at: datetime


def _same_news(old: Alert, new: Alert) -> bool:
    return (old.severity, old.summary, old.description, old.link) == (
        new.severity,
        new.summary,
        new.description,
        new.link,
    )


def _sink_names(notifiers: Sequence[Notifier]) -> list[str]:
    names: list[str] = []
    for notifier in notifiers:
        base = str(getattr(notifier, "name", type(notifier).__name__))
        name, number = base, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.append(name)
    return names


class AlertDispatcher:
    """Fans alerts out to ``notifiers``; remembers firing ones; resolves; re-sends; beats.

    ``clock`` is an object with ``now()`` (``service.clock.Clock``) or a function returning
    an aware ``datetime``. Counters for self-metrics: ``sent_total[sink]`` and
    ``failed_total[sink]`` count delivery rounds (not alerts); ``on_delivery`` is called
    after each attempt, for prometheus_client counters.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        clock: _HasNow | Callable[[], datetime],
        *,
        resend_interval: timedelta = timedelta(minutes=1),
        heartbeat_interval: timedelta = timedelta(minutes=1),
        heartbeat_ttl: timedelta | None = None,
        instance: str | None = None,
        link: str | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        self.notifiers = list(notifiers)
        self.names = _sink_names(self.notifiers)
        self._now: Callable[[], datetime] = clock.now if hasattr(clock, "now") else clock  # type: ignore[assignment]
        self.resend_interval = resend_interval
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_ttl = heartbeat_ttl or heartbeat_interval * 4
        self.instance = instance
        self.link = link
        self.on_delivery = on_delivery
        self.sent_total: Counter[str] = Counter()
        self.failed_total: Counter[str] = Counter()
        self._firing: dict[Identity, Alert] = {}
        self._resolving: dict[Identity, Alert] = {}
        self._seen: dict[tuple[str, Identity], _Seen] = {}
        self._last_heartbeat: dict[str, datetime] = {}
        self._state_lock = threading.Lock()
        self._round_lock = threading.Lock()  # one delivery round at a time: order is kept

    # -- what callers use ------------------------------------------------------------------

    def firing(self) -> list[Alert]:
        """Alerts fired and not yet resolved."""
        with self._state_lock:
            return list(self._firing.values())

    def fire(self, alert: Alert) -> DeliveryReport:
        """Send ``alert`` to every sink now and keep it firing until resolved.

        An alert with ``ends_at`` in the future (news such as "upgrade done") is sent once
        and ends by itself; one with ``ends_at`` already passed is a resolve. Firing the same
        alert again unchanged (a resumed step) skips sinks that already have it, so chat
        channels see it once; a changed text goes to every sink."""
        now = self._now()
        if alert.is_resolved(now):
            return self.resolve(alert)
        identity = alert.identity()
        targets = list(self.names)
        with self._state_lock:
            previous = self._firing.get(identity)
            if alert.ends_at is None:
                if previous is not None and _same_news(previous, alert):
                    targets = [
                        name
                        for name in self.names
                        if not (seen := self._seen.get((name, identity))) or not seen.firing
                    ]
                    alert = previous  # keep the first starts_at
                self._firing[identity] = alert
            self._resolving.pop(identity, None)
        log.info(
            "alert firing",
            extra={
                "fields": {
                    "alert": alert.name.value,
                    "severity": alert.severity.value,
                    "labels": dict(alert.labels),
                    "summary": alert.summary,
                }
            },
        )
        return self._round({name: [alert] for name in targets}, now)

    def adopt(self, alert: Alert) -> None:
        """Take over an alert fired by another replica (or by this service before it
        restarted) and not yet resolved: keep it firing, resolve it later, send nothing now.

        Every sink counts as having it since now: sinks that deduplicate (``repeats``,
        Alertmanager) get it again at the next re-send, which keeps it alive there without a
        new notification; chat sinks, which had it once from the first sender, never again.
        An alert already firing here is left as it is."""
        now = self._now()
        identity = alert.identity()
        with self._state_lock:
            if identity in self._firing:
                return
            self._firing[identity] = alert
            self._resolving.pop(identity, None)
            for name in self.names:
                self._seen[(name, identity)] = _Seen(firing=True, at=now)
        log.info(
            "alert taken over",
            extra={"fields": {"alert": alert.name.value, "labels": dict(alert.labels)}},
        )

    def resolve(self, alert_or_identity: Alert | Identity) -> DeliveryReport:
        """Send the end of a firing alert (same labels, ``ends_at`` = now) to every sink."""
        now = self._now()
        identity = (
            alert_or_identity.identity()
            if isinstance(alert_or_identity, Alert)
            else alert_or_identity
        )
        with self._state_lock:
            known = self._firing.pop(identity, None)
        if known is None and isinstance(alert_or_identity, Alert):
            known = alert_or_identity
        if known is None:
            log.debug("nothing to resolve", extra={"fields": {"alert": identity[0]}})
            return DeliveryReport()
        ended = known.resolved(now)
        with self._state_lock:
            self._resolving[identity] = ended
        log.info(
            "alert resolved",
            extra={"fields": {"alert": ended.name.value, "labels": dict(ended.labels)}},
        )
        return self._round({name: [ended] for name in self.names}, now)

    def resolve_all(
        self, name: AlertName | str | None = None, annotations: Mapping[str, str] | None = None
    ) -> DeliveryReport:
        """Resolve every firing alert called ``name`` (every firing alert if None).

        ``annotations`` are added to the resolutions sent (e.g. who approved a held upgrade:
        ``requested_by``, ``reason``); annotations are not part of an alert's identity."""
        wanted = None if name is None else str(getattr(name, "value", name))
        now = self._now()
        ended: list[Alert] = []
        with self._state_lock:
            for identity, alert in list(self._firing.items()):
                if wanted is None or alert.name.value == wanted:
                    del self._firing[identity]
                    if annotations:
                        alert = replace(alert, annotations={**alert.annotations, **annotations})
                    self._resolving[identity] = alert.resolved(now)
                    ended.append(self._resolving[identity])
        if not ended:
            return DeliveryReport()
        log.info(
            "alerts resolved",
            extra={"fields": {"alerts": [a.name.value for a in ended], "count": len(ended)}},
        )
        return self._round({sink: list(ended) for sink in self.names}, now)

    def send(self, alerts: Sequence[Alert]) -> None:
        """The ``Notifier`` protocol, so the engine can use the dispatcher as its notifier.

        Raises ``NotificationError`` only when no sink took an alert (none configured, or
        all failed); a partial failure is logged, counted and retried by ``tick``."""
        if not self.notifiers:
            raise NotificationError("no notification sink is configured")
        failures: list[str] = []
        for alert in alerts:
            report = self.fire(alert)
            if not report.delivered and report.failed:
                failures.extend(f"{sink}: {why}" for sink, why in report.failed.items())
        if failures:
            raise NotificationError("; ".join(failures))

    def heartbeat(self) -> DeliveryReport:
        """Send the heartbeat to every sink that takes heartbeats, now."""
        now = self._now()
        beat = self._heartbeat_alert(now)
        batches = {name: [beat] for name, sink in self._pairs() if self._beats(sink)}
        return self._round(batches, now)

    def tick(self, healthy: bool = True) -> DeliveryReport:
        """Periodic upkeep: deliver what failed before, re-send firing alerts that are due,
        and the heartbeat when due and ``healthy`` (an unhealthy service lets it lapse)."""
        now = self._now()
        batches: dict[str, list[Alert]] = {}
        beat = self._heartbeat_alert(now) if healthy else None
        with self._state_lock:
            for name, sink in self._pairs():
                batch: list[Alert] = []
                repeats = bool(getattr(sink, "repeats", True))
                for identity, alert in self._firing.items():
                    seen = self._seen.get((name, identity))
                    if (
                        seen is None
                        or not seen.firing
                        or (repeats and now - seen.at >= self.resend_interval)
                    ):
                        batch.append(alert)
                for identity, ended in self._resolving.items():
                    seen = self._seen.get((name, identity))
                    if seen is None or seen.firing:
                        batch.append(ended)
                last = self._last_heartbeat.get(name)
                if (
                    beat is not None
                    and self._beats(sink)
                    and (last is None or now - last >= self.heartbeat_interval)
                ):
                    batch.append(beat)
                if batch:
                    batches[name] = batch
        if not batches:
            return DeliveryReport()
        return self._round(batches, now)

    def close(self) -> None:
        """Close the sinks' HTTP sessions."""
        for notifier in self.notifiers:
            closer = getattr(notifier, "close", None)
            if callable(closer):
                closer()

    # -- inside ----------------------------------------------------------------------------

    def _pairs(self) -> Iterable[tuple[str, Notifier]]:
        return zip(self.names, self.notifiers, strict=True)

    @staticmethod
    def _beats(sink: Notifier) -> bool:
        return bool(getattr(sink, "heartbeats", getattr(sink, "repeats", True)))

    def _heartbeat_alert(self, now: datetime) -> Alert:
        return heartbeat(now=now, ttl=self.heartbeat_ttl, instance=self.instance, link=self.link)

    def _round(self, batches: dict[str, list[Alert]], now: datetime) -> DeliveryReport:
        """Send each sink its batch, all sinks in parallel; record what each one took."""
        batches = {name: batch for name, batch in batches.items() if batch}
        if not batches:
            return DeliveryReport()
        sinks = dict(self._pairs())
        with self._round_lock:
            with ThreadPoolExecutor(
                max_workers=len(batches), thread_name_prefix="alert-sink"
            ) as pool:
                futures = {
                    name: pool.submit(self._deliver, name, sinks[name], batch)
                    for name, batch in batches.items()
                }
                outcomes = {name: future.result() for name, future in futures.items()}
            delivered: list[str] = []
            failed: dict[str, str] = {}
            with self._state_lock:
                for name, error in outcomes.items():
                    if error is not None:
                        failed[name] = error
                        continue
                    delivered.append(name)
                    for alert in batches[name]:
                        identity = alert.identity()
                        if alert.name is AlertName.HEARTBEAT:
                            self._last_heartbeat[name] = now
                            continue
                        if identity not in self._firing and identity not in self._resolving:
                            continue  # sent once (news that ends by itself): nothing to track
                        self._seen[(name, identity)] = _Seen(
                            firing=alert.ends_at is None or alert.ends_at > now, at=now
                        )
                self._forget_delivered_resolves()
        return DeliveryReport(delivered=tuple(delivered), failed=failed)

    def _forget_delivered_resolves(self) -> None:
        for identity in list(self._resolving):
            seen = [self._seen.get((name, identity)) for name in self.names]
            if all(s is not None and not s.firing for s in seen):
                del self._resolving[identity]
                for name in self.names:
                    self._seen.pop((name, identity), None)

    def _deliver(self, name: str, sink: Notifier, batch: list[Alert]) -> str | None:
        """One sink, one batch: ``None`` when delivered, else why not (already redacted)."""
        try:
            sink.send(batch)
        except Exception as error:  # a broken sink must never break the others
            why = redact(str(error)) or type(error).__name__
            expected = isinstance(error, NotificationError)
            log.error(
                "notification sink failed" if expected else "notification sink crashed",
                extra={
                    "fields": {
                        "sink": name,
                        "alerts": [a.name.value for a in batch],
                        "error": why,
                    }
                },
            )
            self._count(name, False, len(batch))
            return why
        log.debug(
            "notification delivered",
            extra={"fields": {"sink": name, "alerts": [a.name.value for a in batch]}},
        )
        self._count(name, True, len(batch))
        return None

    def _count(self, name: str, ok: bool, count: int) -> None:
        with self._state_lock:
            (self.sent_total if ok else self.failed_total)[name] += 1
        if self.on_delivery is not None:
            try:
                self.on_delivery(name, ok, count)
            except Exception:  # metrics must not break alerting
                log.exception("delivery callback failed")


def notifiers_from_urls(
    alertmanager_url: str | None,
    webhook_url: str | None,
    *,
    timeout: float = 5.0,
    **alertmanager_options: Any,
) -> list[Notifier]:
    """The sinks ``--alertmanager-url`` / ``--webhook-url`` ask for (empty list: none)."""
    sinks: list[Notifier] = []
    if alertmanager_url:
        sinks.append(AlertmanagerNotifier(alertmanager_url, timeout, **alertmanager_options))
    if webhook_url:
        sinks.append(WebhookNotifier(webhook_url, timeout))
    return sinks
