"""Who may act: the decision rules of a coordination.k8s.io Lease, as a pure function.

Only one replica acts (design.md); the others serve read-only status. A replica holds the
lease while it renews it within ``leaseDurationSeconds``; anyone may take an expired lease.
Time comes in as an argument; the adapter reads and writes the Lease object.
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

    def expires_at(self) -> datetime | None:
        return self.renewed_at + self.duration if self.renewed_at else None

    def held_by_other(self, me: str, now: datetime) -> bool:
        expiry = self.expires_at()
        return bool(self.holder) and self.holder != me and expiry is not None and now < expiry


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

    @property
    def leads(self) -> bool:
        return self.move is not LeaseMove.WAIT


def decide_lease(
    current: LeaseRecord | None, me: str, now: datetime, duration: timedelta
) -> LeaseDecision:
    """Create, renew, take over, or wait — as Kubernetes leader election does."""
    if current is None:
        return LeaseDecision(LeaseMove.CREATE, LeaseRecord(me, duration, now, now, 0))
    if current.holder == me:
        return LeaseDecision(LeaseMove.RENEW, replace(current, renewed_at=now, duration=duration))
    if current.held_by_other(me, now):
        return LeaseDecision(LeaseMove.WAIT, None)
    return LeaseDecision(
        LeaseMove.TAKE,
        replace(
            current,
            holder=me,
            duration=duration,
            acquired_at=now,
            renewed_at=now,
            transitions=current.transitions + 1,
        ),
    )


def released(current: LeaseRecord) -> LeaseRecord:
    """The record a holder writes when it stops gracefully: no holder, so others take over
    at once instead of waiting for expiry."""
    return replace(current, holder=None, renewed_at=None)
