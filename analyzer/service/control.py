"""The vocabulary of the operator verbs: what a request to upgrade carries, how the service
answers a verb, and how it refuses one.

Why it lives in the service: the verbs are the service's (``verbs``); the HTTP API
(``views.http_api``) only carries them, turning a refusal into HTTP 409 and a verb queued
for the leader into HTTP 202. The service therefore needs nothing from the web layer.
"""

from __future__ import annotations

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
    def pause(self) -> ControlAnswer: ...
    def resume(self) -> ControlAnswer: ...
    def approve(self) -> ControlAnswer: ...
    def abort(self) -> ControlAnswer: ...
    def request_upgrade(self, body: UpgradeRequestBody) -> ControlAnswer: ...
    def approve_prune(self) -> ControlAnswer: ...
