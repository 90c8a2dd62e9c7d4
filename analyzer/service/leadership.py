"""Leader election for the service: renew the Lease on a schedule, act only while leading.

The one service module for leadership: ``LeaderElector`` runs the Lease (the decisions are
``core.leadership``'s, pure), ``Leadership`` is what the service loop asks (a single
replica, without an elector, always leads), and ``holding_lease`` holds it for a
foreground ``upgrade``.

A replica that cannot reach the API server stops acting once its own lease would have
expired (it cannot know whether another replica took over). Another holder's lease is
judged live from when this replica observed its last change, by this replica's clock
(client-go's rule, see ``analyzer.core.leadership``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from analyzer.adapters.lease import KubernetesLease, LeaseConflictError, LeaseError
from analyzer.core.leadership import LeaseMove, Observation, decide_lease, observe, released
from analyzer.errors import BadInputError
from analyzer.settings import Settings

log = logging.getLogger("canary_analyzer.leadership")


class LeaderElector:
    """Keeps or waits for the lease; ``is_leader(now)`` says whether this replica may act."""

    def __init__(self, lease: KubernetesLease, identity: str, duration: timedelta):
        self.lease = lease
        self.identity = identity
        self.duration = duration
        self._valid_until: datetime | None = None
        self._lock = threading.Lock()
        self.holder: str | None = None
        self.observed: Observation | None = None

    def is_leader(self, now: datetime) -> bool:
        with self._lock:
            return self._valid_until is not None and now < self._valid_until

    def tick(self, now: datetime) -> bool:
        """Try to acquire or renew; returns whether this replica leads after the attempt."""
        current = None
        try:
            current = self.lease.read()
            decision = decide_lease(current, self.identity, now, self.duration, self.observed)
            if decision.move is LeaseMove.CREATE:
                self.lease.create(decision.record)
            elif decision.move in (LeaseMove.RENEW, LeaseMove.TAKE):
                self.lease.replace(decision.record)
            self.observed = decision.observation
            self.holder = (
                decision.record.holder if decision.record else current.holder if current else None
            )
        except LeaseConflictError:
            self.observed = observe(self.observed, current, now)
            return self.is_leader(now)  # someone wrote first; keep what we had until it lapses
        except LeaseError as error:
            log.warning("lease not renewed", extra={"fields": {"error": str(error)}})
            return self.is_leader(now)
        was_leader = self.is_leader(now)
        with self._lock:
            self._valid_until = now + self.duration if decision.leads else None
        if decision.leads and not was_leader:
            log.info(
                "became leader",
                extra={"fields": {"identity": self.identity, "move": decision.move.value}},
            )
        if not decision.leads and was_leader:
            log.warning("lost leadership", extra={"fields": {"holder": self.holder}})
        return decision.leads

    def release(self) -> None:
        """Give the lease up on graceful shutdown so another replica takes over at once."""
        with self._lock:
            self._valid_until = None
        try:
            current = self.lease.read()
            if current is not None and current.holder == self.identity:
                self.lease.replace(released(current))
                log.info("lease released", extra={"fields": {"identity": self.identity}})
        except LeaseError as error:
            log.warning("lease not released", extra={"fields": {"error": str(error)}})


class Leadership:
    """Whether this replica may act. ``None`` elector: a single replica always leads."""

    def __init__(self, elector: LeaderElector | None = None):
        self.elector = elector

    def leads(self, now: datetime) -> bool:
        return self.elector is None or self.elector.is_leader(now)

    def tick(self, now: datetime) -> bool:
        return True if self.elector is None else self.elector.tick(now)

    @property
    def holder(self) -> str | None:
        return None if self.elector is None else self.elector.holder

    @property
    def identity(self) -> str | None:
        return None if self.elector is None else self.elector.identity

    def release(self) -> None:
        if self.elector is not None:
            self.elector.release()


class LeaseHeldError(BadInputError):
    """Another replica (a running service) holds the lease: acting now would race it."""


@contextmanager
def holding_lease(elector: LeaderElector, now: Callable[[], datetime]) -> Iterator[LeaderElector]:
    """Hold the lease for a foreground run (``upgrade``), renewing it in the background;
    refuse when someone else (a running service) holds it.

    A lease held by another replica is watched for up to one lease duration (client-go's
    rule: live until it goes unchanged that long by our clock): if its holder renews it,
    the holder is alive and the run refuses; if not, the run takes it over."""
    step = max(elector.duration.total_seconds() / 5, 0.1)
    give_up = time.monotonic() + elector.duration.total_seconds() + 2 * step
    acquired = elector.tick(now())
    first = elector.observed
    while (
        not acquired
        and first is not None
        and elector.observed == first
        and time.monotonic() < give_up
    ):
        time.sleep(step)
        acquired = elector.tick(now())
    if not acquired:
        raise LeaseHeldError(
            f"{elector.holder or 'another replica'} holds the lease "
            f"{elector.lease.namespace}/{elector.lease.name}: a service is running; pause it "
            "(canary-analyzer pause) or scale it to zero before a foreground upgrade"
        )
    stop = threading.Event()
    every = max(elector.duration.total_seconds() / 3, 0.2)

    def renew() -> None:
        while not stop.wait(every):
            elector.tick(now())

    thread = threading.Thread(target=renew, name="lease-renewal", daemon=True)
    thread.start()
    try:
        yield elector
    finally:
        stop.set()
        thread.join(timeout=10)
        elector.release()


def lease_namespace(settings: Settings) -> str:
    """Where the Lease lives: the setting, else the pod's namespace, else the state's."""
    return (
        settings.service.lease_namespace
        or os.environ.get("POD_NAMESPACE")
        or settings.upgrade.state_namespace
    )
