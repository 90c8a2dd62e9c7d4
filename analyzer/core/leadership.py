"""Who may act: the decision rules of a coordination.k8s.io Lease, as a pure function.

Only one replica acts; the others serve read-only status. A replica holds the lease while
it renews it within ``leaseDurationSeconds``; anyone may take an expired lease.

Expiry is judged as client-go does (tools/leaderelection/leaderelection.go,
tryAcquireOrRenew / isLeaseValid): from *this* replica's own clock, at the moment it
first observed the current record (``observedTime``, reset whenever the record it reads
differs from the one it saw last), never from the holder's ``renewTime``, which was
written by another node's clock. A replica that has just started therefore treats any
held lease as live for one full lease duration. Time comes in as an argument; the adapter
reads and writes the Lease object.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class LeaseRecord:
    """The fields of a Lease's spec that matter, plus its resourceVersion."""

    holder: str | None
    duration: timedelta
    acquired_at: datetime | None
    renewed_at: datetime | None
    transitions: int = 0
    resource_version: str | None = None

    def content(self) -> tuple[object, ...]:
        """What client-go compares to notice a change (the record, not its version)."""
        return (self.holder, self.duration, self.acquired_at, self.renewed_at, self.transitions)


@dataclass(frozen=True)
class Observation:
    """The record this replica last saw and when, by its own clock (client-go's
    ``observedRecord`` / ``observedTime``)."""

    content: tuple[object, ...]
    at: datetime
    duration: timedelta

    def valid_until(self) -> datetime:
        return self.at + self.duration


def observe(
    previous: Observation | None, current: LeaseRecord | None, now: datetime
) -> Observation | None:
    """The observation after reading ``current`` at ``now``: unchanged while the record is
    the same, restarted at ``now`` when it changed."""
    if current is None:
        return None
    if previous is not None and previous.content == current.content():
        return previous
    return Observation(current.content(), now, current.duration)


class LeaseMove(StrEnum):
    """What to do with the Lease object."""

    CREATE = "create"  # there is none: create it holding it
    RENEW = "renew"  # ours: bump renewTime
    TAKE = "take"  # expired or released: take it over
    WAIT = "wait"  # someone else holds it


@dataclass(frozen=True)
class LeaseDecision:
    move: LeaseMove
    record: LeaseRecord | None  # the record to write (None for WAIT)
    observation: Observation | None = None  # what this replica knows after the decision

    @property
    def leads(self) -> bool:
        return self.move is not LeaseMove.WAIT


def decide_lease(
    current: LeaseRecord | None,
    me: str,
    now: datetime,
    duration: timedelta,
    observed: Observation | None,
) -> LeaseDecision:
    """Create, renew, take over, or wait — as client-go's leader election does.

    ``observed`` is what this replica saw before (None at first); the decision carries the
    observation to keep for the next call (of the written record, at ``now``, when it
    writes one — client-go's setObservedRecord after a successful update)."""
    seen = observe(observed, current, now)
    if current is None:
        record = LeaseRecord(me, duration, now, now, 0)
        return LeaseDecision(LeaseMove.CREATE, record, observe(None, record, now))
    if current.holder == me:
        record = replace(current, renewed_at=now, duration=duration)
        return LeaseDecision(LeaseMove.RENEW, record, observe(None, record, now))
    if current.holder and seen is not None and now < seen.valid_until():
        return LeaseDecision(LeaseMove.WAIT, None, seen)
    record = replace(
        current,
        holder=me,
        duration=duration,
        acquired_at=now,
        renewed_at=now,
        transitions=current.transitions + 1,
    )
    return LeaseDecision(LeaseMove.TAKE, record, observe(None, record, now))


def released(current: LeaseRecord) -> LeaseRecord:
    """The record a holder writes when it stops gracefully: no holder, so others take over
    at once instead of waiting for expiry."""
    return replace(current, holder=None, renewed_at=None)
