"""What the service knows besides the upgrade's own state: its phase, what it must remember
across restarts, and the latest facts ``/api/status`` shows.

Why a module of its own: the loop, the operator verbs, the engine worker and the status
document (``loop``, ``verbs``, ``worker``, ``status``) all read and write these, and none of
them owns them. ``ServiceMemory`` is stored in the state ConfigMap's ``service`` key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from analyzer.core.upgrade import UpgradeState
from analyzer.core.verdicts import VerdictAt
from analyzer.service.maintenance import HoursState


class Phase(StrEnum):
    """What the service is doing, as ``/api/status`` (``phase``) and the metrics say it.

    A ``StrEnum``: the JSON and the metric labels carry the same text as before."""

    IDLE = "idle"
    WAITING_WINDOW = "waiting-window"  # for the maintenance hours to open
    RUNNING = "running"
    PAUSED = "paused"
    HELD = "held"
    ROLLING_BACK = "rolling-back"
    DONE = "done"
    FAILED = "failed"
    STANDBY = "standby"  # another replica holds the Lease
    SHADOW = "shadow"  # judge-only (service.mode: shadow): watches restarts, acts on nothing

    @property
    def metric(self) -> Phase:
        """The phase the metrics export: a standby shows as idle."""
        return Phase.IDLE if self is Phase.STANDBY else self


@dataclass
class ServiceMemory:
    """What the service must not forget across restarts (kept in the state ConfigMap)."""

    paused: bool = False
    paused_at: str | None = None
    request: dict[str, Any] | None = None
    refused: dict[str, Any] | None = None  # the last request preflight refused, and why
    soak: dict[str, Any] | None = None  # the soak of the last promotion (``soak_judge``)
    prune: dict[str, Any] | None = None  # its prune offer and ready alert (``PruneGate``)

    @classmethod
    def from_document(cls, document: dict[str, Any] | None) -> ServiceMemory:
        document = document or {}
        return cls(
            paused=bool(document.get("paused", False)),
            paused_at=document.get("paused_at"),
            request=document.get("request"),
            refused=document.get("refused"),
            soak=document.get("soak"),
            prune=document.get("prune"),
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "paused_at": self.paused_at,
            "request": self.request,
            "refused": self.refused,
            "soak": self.soak,
            "prune": self.prune,
        }


@dataclass
class ServiceView:
    """The latest facts for ``/api/status`` (updated by the loop and the engine)."""

    phase: Phase = Phase.IDLE
    message: str = ""
    state: UpgradeState | None = None
    hours: HoursState | None = None
    last_verdicts: list[VerdictAt] = field(default_factory=list)  # newest first
    worker_error: str | None = None
    queued_requests: list[dict[str, Any]] = field(default_factory=list)  # as last read
