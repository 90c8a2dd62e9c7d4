"""The vocabulary of the operator verbs: what a request to upgrade carries, how the service
answers a verb, who asked for it and why (``Requester``), and how it refuses one.

Why it lives in the service: the verbs are the service's (``verbs``); the HTTP API
(``views.http_api``) only carries them, turning a refusal into HTTP 409 and a verb queued
for the leader into HTTP 202. The service therefore needs nothing from the web layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

REVISION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class UpgradeRequestBody(BaseModel):
    """Body of ``POST /api/upgrade``."""

    model_config = ConfigDict(extra="forbid")

    to_revision: str = Field(pattern=REVISION_NAME)
    from_revision: str | None = Field(None, pattern=REVISION_NAME)
    tag: str | None = Field(None, pattern=REVISION_NAME)
    namespaces: list[str] | None = None


@dataclass(frozen=True)
class Requester:
    """Who sent an operator verb and why (``X-Canary-Actor``, ``X-Canary-Reason``; the CLI's
    ``--as`` and ``--reason``). Both optional: a verb without them is "an operator"'s.

    ``authenticated_by``: the header an authenticating proxy set the actor from (the
    ``service.user_header`` setting, e.g. ``X-Remote-User``); None: the name is the caller's
    own claim. ``claimed_by``: with ``authenticated_by``, a different name the caller
    claimed (``X-Canary-Actor``), kept apart and never taken for the sender."""

    actor: str | None = None
    reason: str | None = None
    authenticated_by: str | None = None
    claimed_by: str | None = None

    @property
    def who(self) -> str:
        return self.actor or "an operator"

    def text(self) -> str:
        """``alice: db migration`` (``alice`` without a reason) — as timeline notes read."""
        return f"{self.who}: {self.reason}" if self.reason else self.who

    def to_json(self) -> dict[str, str]:
        """``{"requested_by", "reason", "authenticated_by", "claimed_by"}`` with only what is
        known (the HTTP answer's keys)."""
        found = {
            "requested_by": self.actor,
            "reason": self.reason,
            "authenticated_by": self.authenticated_by,
            "claimed_by": self.claimed_by,
        }
        return {key: value for key, value in found.items() if value}

    @classmethod
    def from_json(cls, data: Any) -> Requester:
        if not isinstance(data, Mapping):
            return cls()
        authenticated = bool(data.get("authenticated_by") and data.get("requested_by"))
        return cls(
            actor=str(data["requested_by"]) if data.get("requested_by") else None,
            reason=str(data["reason"]) if data.get("reason") else None,
            authenticated_by=str(data["authenticated_by"]) if authenticated else None,
            claimed_by=str(data["claimed_by"])
            if authenticated and data.get("claimed_by")
            else None,
        )


#: A verb nobody named: "an operator", no reason.
NOBODY = Requester()


def abort_reason(requester: Requester) -> tuple[str, str]:
    """``(reason, who)`` for ``core.upgrade.abort``: ``aborted by alice: db migration``
    (``aborted by operator: abort requested through the API`` when nobody is named)."""
    return requester.reason or "abort requested through the API", requester.actor or "operator"


class ControlRefusedError(Exception):
    """A control verb that makes no sense now (e.g. approve with nothing held): HTTP 409."""


class StandbyCannotQueueError(ControlRefusedError):
    """A standby could not queue a verb for the leader (API unreachable, every write lost
    a race, inbox full): HTTP 409 naming the leader, to whom the operator can turn."""


@dataclass(frozen=True)
class QueuedForLeader:
    """A standby's answer to a control verb: queued for the leader, who applies it on its
    next pass (HTTP 202)."""

    request_id: str
    verb: str
    leader: str | None

    @property
    def message(self) -> str:
        leader = f"the leader {self.leader}" if self.leader else "the next leader"
        return f"queued for {leader}: {self.verb}"

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "queued": True, "id": self.request_id}


ControlAnswer = dict[str, Any] | QueuedForLeader


class ServiceControl(Protocol):
    """What the HTTP layer needs from the service."""

    def status(self) -> dict[str, Any]: ...
    def readiness(self) -> tuple[bool, str]: ...
    def pause(self, requester: Requester = NOBODY) -> ControlAnswer: ...
    def resume(self, requester: Requester = NOBODY) -> ControlAnswer: ...
    def approve(self, requester: Requester = NOBODY) -> ControlAnswer: ...
    def abort(self, requester: Requester = NOBODY) -> ControlAnswer: ...
    def request_upgrade(
        self, body: UpgradeRequestBody, requester: Requester = NOBODY
    ) -> ControlAnswer: ...
    def approve_prune(self, requester: Requester = NOBODY) -> ControlAnswer: ...
    def rollback(self, requester: Requester = NOBODY) -> ControlAnswer: ...
