"""The dispatcher's bookkeeping with in-memory sinks and a hand-moved clock: who gets what,
when firing alerts are sent again, how resolves and failed deliveries are retried."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from analyzer.core.alerts import Alert, AlertName, NotificationError
from analyzer.core.alerts import builders as build
from analyzer.core.upgrade import UpgradeIdentity
from analyzer.service.alerting import AlertDispatcher
from tests.fixtures.alerts import NOW, failing_verdict


class Clock:
    def __init__(self) -> None:
        self.moment = NOW

    def now(self) -> datetime:
        return self.moment


class Sink:
    """Records batches; can be told to fail. ``repeats`` like Alertmanager unless said."""

    def __init__(self, name: str, repeats: bool = True, heartbeats: bool | None = None) -> None:
        self.name = name
        self.repeats = repeats
        if heartbeats is not None:
            self.heartbeats = heartbeats
        self.batches: list[list[Alert]] = []
        self.failing = False

    def send(self, alerts: Sequence[Alert]) -> None:
        if self.failing:
            raise NotificationError(f"{self.name} down; Authorization: Bearer s3cr3t")
        self.batches.append(list(alerts))

    def names(self) -> list[str]:
        return [a.name.value for batch in self.batches for a in batch]


def rollback(namespace: str = "shop") -> Alert:
    return build.rollback_started(
        failing_verdict(namespace),
        upgrade=UpgradeIdentity("1-14-6", "1-15-4", "default"),
        now=NOW,
    )


def test_firing_alerts_are_resent_to_deduplicating_sinks_only():
    clock, am, chat = Clock(), Sink("am"), Sink("chat", repeats=False)
    dispatcher = AlertDispatcher([am, chat], clock, resend_interval=timedelta(minutes=1))
    report = dispatcher.fire(rollback())
    assert report.ok and set(report.delivered) == {"am", "chat"}
    dispatcher.tick(healthy=False)  # nothing due yet
    assert len(am.batches) == 1 and len(chat.batches) == 1
    clock.moment += timedelta(minutes=1)
    dispatcher.tick(healthy=False)
    assert am.names() == [AlertName.ROLLBACK_STARTED.value] * 2
    assert chat.names() == [AlertName.ROLLBACK_STARTED.value]


def test_resolve_sends_ends_at_now_with_the_same_labels_and_stops_resends():
    clock, am, chat = Clock(), Sink("am"), Sink("chat", repeats=False)
    dispatcher = AlertDispatcher([am, chat], clock)
    alert = rollback()
    dispatcher.fire(alert)
    clock.moment += timedelta(seconds=30)
    dispatcher.resolve(alert.identity())
    for sink in (am, chat):
        ended = sink.batches[-1][0]
        assert ended.labels == alert.labels and ended.ends_at == clock.moment
    assert dispatcher.firing() == []
    clock.moment += timedelta(hours=1)
    dispatcher.tick(healthy=False)
    assert len(am.batches) == 2 and len(chat.batches) == 2
    assert dispatcher.resolve(alert.identity()).delivered == ()  # unknown identity: nothing
    # an Alert not remembered (e.g. fired before a restart) is still sent resolved
    assert set(dispatcher.resolve(alert).delivered) == {"am", "chat"}
    assert am.batches[-1][0].is_resolved(clock.moment)


def test_resolve_all_ends_every_alert_of_a_name():
    clock, am = Clock(), Sink("am")
    dispatcher = AlertDispatcher([am], clock)
    dispatcher.fire(rollback("a"))
    dispatcher.fire(rollback("b"))
    done = build.rules_invalid(["x.yaml:1: bad"], rules_dir="rules", now=NOW)
    dispatcher.fire(done)
    dispatcher.resolve_all(AlertName.ROLLBACK_STARTED)
    ended = am.batches[-1]
    assert sorted(a.labels["namespace"] for a in ended) == ["a", "b"]
    assert all(a.ends_at == clock.moment for a in ended)
    assert [a.name for a in dispatcher.firing()] == [AlertName.RULES_INVALID]


def test_a_failing_sink_does_not_stop_the_others_and_gets_the_alert_once_back(alert_logs):
    clock, broken, good = Clock(), Sink("broken"), Sink("good")
    broken.failing = True
    deliveries: list[tuple[str, bool, int]] = []
    dispatcher = AlertDispatcher(
        [broken, good], clock, on_delivery=lambda *args: deliveries.append(args)
    )
    report = dispatcher.fire(rollback())
    assert report.delivered == ("good",) and set(report.failed) == {"broken"}
    assert good.names() == [AlertName.ROLLBACK_STARTED.value]
    assert dispatcher.failed_total["broken"] == 1 and dispatcher.sent_total["good"] == 1
    assert ("broken", False, 1) in deliveries and ("good", True, 1) in deliveries
    logged = " ".join(str(getattr(r, "fields", "")) + r.getMessage() for r in alert_logs)
    assert "broken down" in logged and "s3cr3t" not in logged
    broken.failing = False
    dispatcher.tick(healthy=False)  # not due for good, but broken never got it
    assert broken.names() == [AlertName.ROLLBACK_STARTED.value]
    assert len(good.batches) == 1


def test_send_raises_only_when_no_sink_took_the_alert():
    clock, one, two = Clock(), Sink("one"), Sink("two")
    dispatcher = AlertDispatcher([one, two], clock)
    one.failing = True
    dispatcher.send([rollback("a")])  # two took it
    two.failing = True
    with pytest.raises(NotificationError):
        dispatcher.send([rollback("b")])
    with pytest.raises(NotificationError):
        AlertDispatcher([], clock).send([rollback("c")])


def test_heartbeat_is_sent_when_due_while_healthy_and_lapses_when_not():
    clock = Clock()
    am, chat = Sink("am"), Sink("chat", repeats=False)
    dispatcher = AlertDispatcher([am, chat], clock, heartbeat_interval=timedelta(minutes=1))
    dispatcher.tick()
    assert am.names() == [AlertName.HEARTBEAT.value] and chat.batches == []
    beat = am.batches[0][0]
    assert beat.ends_at == NOW + timedelta(minutes=4)
    dispatcher.tick()  # not due
    clock.moment += timedelta(minutes=1)
    dispatcher.tick(healthy=False)  # unhealthy: no beat, it expires by itself
    assert len(am.batches) == 1
    dispatcher.tick()
    assert len(am.batches) == 2


def test_news_with_an_end_is_sent_once_and_not_tracked():
    clock, am = Clock(), Sink("am")
    dispatcher = AlertDispatcher([am], clock)
    done = build.upgrade_done(
        upgrade=UpgradeIdentity("a", "b", "default"), namespaces=("x",), now=NOW
    )
    dispatcher.fire(done)
    clock.moment += timedelta(minutes=5)
    dispatcher.tick(healthy=False)
    assert am.names() == [AlertName.UPGRADE_DONE.value]
    assert dispatcher.firing() == []


def test_firing_the_same_alert_again_reaches_only_sinks_that_missed_it():
    clock, am, chat = Clock(), Sink("am"), Sink("chat", repeats=False)
    dispatcher = AlertDispatcher([am, chat], clock)
    alert = rollback()
    dispatcher.fire(alert)
    chat.failing = True
    clock.moment += timedelta(seconds=5)
    dispatcher.fire(alert)  # e.g. a resumed step: nothing new for anyone
    assert len(am.batches) == 1 and len(chat.batches) == 1
    changed = build.rollback_started(
        failing_verdict("shop"),
        upgrade=UpgradeIdentity("1-14-6", "1-15-4", "default"),
        now=clock.moment,
        next_steps=["restart shop again"],
    )
    chat.failing = False
    dispatcher.fire(changed)  # same identity, new text: everyone hears it
    assert len(am.batches) == 2 and len(chat.batches) == 2


def test_an_adopted_alert_is_not_sent_now_kept_alive_where_deduplicated_and_resolved():
    """A new leader takes over an alert the previous one fired: nothing goes out at once,
    Alertmanager-like sinks get it at the next re-send (their deduplication does not notify
    again), chat sinks never again, and its resolve reaches every sink."""
    clock, am, chat = Clock(), Sink("am"), Sink("chat", repeats=False)
    dispatcher = AlertDispatcher([am, chat], clock, resend_interval=timedelta(minutes=1))
    fired = Alert.from_json(rollback().to_json())  # as kept in the state ConfigMap
    assert fired == rollback()
    dispatcher.adopt(fired)
    dispatcher.tick(healthy=False)
    assert am.batches == [] and chat.batches == [] and dispatcher.firing() == [fired]
    clock.moment += timedelta(minutes=1)
    dispatcher.tick(healthy=False)
    assert am.names() == [AlertName.ROLLBACK_STARTED.value] and chat.batches == []
    dispatcher.fire(rollback())  # the same alert fired again: no sink is told twice
    assert len(am.batches) == 1 and chat.batches == []
    dispatcher.resolve(fired)
    assert am.batches[-1][0].ends_at == clock.moment
    assert [a.ends_at for batch in chat.batches for a in batch] == [clock.moment]
    assert dispatcher.firing() == []
