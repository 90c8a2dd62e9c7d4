"""Operator verbs a standby replica accepted, waiting for the leader to carry them out.

Why it exists: ``serve`` may run as several replicas behind one Kubernetes Service, and only
the Lease holder acts. An operator's ``pause`` (or resume, approve, abort, upgrade, approve-prune) lands on
whichever replica the Service picks; a standby used to refuse it, so on-call got a random
409 at 3 a.m. Now a standby records the verb here and answers "queued"; the leader reads
the inbox on each pass of its loop, applies the verbs in order through the same methods
the HTTP API calls, and removes exactly the entries it applied.

The inbox is one JSON list under its own key of the state ConfigMap (``inbox``; any
``VersionedStore``), each entry ``{"id", "verb", "body" (upgrade only), "at", "via"}`` and,
when the sender named them, ``"requested_by"`` and ``"reason"``; a verb that came through
an authenticating proxy (``service.user_header``) also keeps ``"authenticated_by"`` (the
header) and ``"claimed_by"`` (a different name the caller claimed). The leader applies the
verb in their name and records it exactly as a verb sent to it directly.
Several replicas change it, so every change is read → edit → conditional write carrying
the version read (the ConfigMap's resourceVersion), and on a conflict it starts again from
a fresh read, a bounded number of times: no entry is ever lost to a concurrent write, and
no other key of the ConfigMap is touched.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analyzer.core.ports import ClusterError, VersionedDocument, VersionedStore, WriteConflictError
from analyzer.service.control import Requester

log = logging.getLogger("canary_analyzer.inbox")

#: The verbs a standby may queue (``upgrade`` carries the body of ``POST /api/upgrade``).
QUEUEABLE_VERBS = ("pause", "resume", "approve", "abort", "upgrade", "rollback",
                   "approve-prune")
#: Conditional writes tried before giving up (each after a fresh read).
INBOX_WRITE_ATTEMPTS = 8
#: At most this many verbs wait at once (a ConfigMap is small; a leader that applies
#: nothing for this long has a problem no further queueing solves).
INBOX_LIMIT = 100


class InboxError(Exception):
    """The inbox could not be changed; the message says why."""


class InboxUnavailableError(InboxError):
    """The store could not be read or written (API unreachable, or every attempt lost a
    race with another writer)."""


class InboxFullError(InboxError):
    """``INBOX_LIMIT`` verbs already wait for the leader."""


@dataclass(frozen=True)
class QueuedRequest:
    """One verb a standby accepted for the leader."""

    id: str
    verb: str
    at: str  # ISO 8601, when the standby accepted it
    via: str  # the standby's identity
    body: dict[str, Any] | None = None  # for ``upgrade``
    sender: Requester = field(default_factory=Requester)  # who sent the verb, and why

    @property
    def requester(self) -> dict[str, str]:
        """``{"requested_by", "reason", "authenticated_by", "claimed_by"}``, only what is
        known (``Requester.to_json``: the entry's keys)."""
        return self.sender.to_json()

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "verb": self.verb, "at": self.at, "via": self.via}
        if self.body is not None:
            entry["body"] = self.body
        return {**entry, **self.requester}

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> QueuedRequest:
        body = entry.get("body")
        return cls(
            id=str(entry["id"]),
            verb=str(entry.get("verb", "")),
            at=str(entry.get("at", "")),
            via=str(entry.get("via", "")),
            body=dict(body) if isinstance(body, Mapping) else None,
            sender=Requester.from_json(entry),
        )

    def describe(self) -> str:
        """``pause by alice (db migration) queued via standby replica-b at 2026-…`` (timeline
        and log wording; ``by …`` only when the sender was named)."""
        sender = f" by {self.sender.actor}" if self.sender.actor else ""
        why = f" ({self.sender.reason})" if self.sender.reason else ""
        return f"{self.verb}{sender}{why} queued via standby {self.via or '?'} at {self.at or '?'}"


def _entries(document: Any) -> list[dict[str, Any]]:
    """The stored list's well-formed entries (an object with a text ``id``); anything else
    is left out, and so dropped by the next write."""
    if document is None:
        return []
    if not isinstance(document, list):
        log.warning("the stored inbox is not a list; it is replaced on the next write")
        return []
    kept = [e for e in document if isinstance(e, Mapping) and isinstance(e.get("id"), str)]
    if len(kept) != len(document):
        log.warning(
            "malformed inbox entries left out",
            extra={"fields": {"dropped": len(document) - len(kept)}},
        )
    return [dict(e) for e in kept]


class ControlInbox:
    """The verbs waiting for the leader, in a ``VersionedStore`` shared by the replicas."""

    def __init__(
        self, store: VersionedStore, attempts: int = INBOX_WRITE_ATTEMPTS, limit: int = INBOX_LIMIT
    ) -> None:
        self.store = store
        self.attempts = attempts
        self.limit = limit

    def pending(self) -> list[QueuedRequest]:
        """The waiting verbs, oldest first. ``InboxUnavailableError`` if unreadable."""
        return [QueuedRequest.from_json(e) for e in _entries(self._read().document)]

    def queue(
        self,
        verb: str,
        at: datetime,
        via: str,
        body: dict[str, Any] | None = None,
        requester: Mapping[str, str] | None = None,
    ) -> QueuedRequest:
        """Append a verb for the leader; returns it once stored. ``requester``: the
        sender's ``{"requested_by", "reason", "authenticated_by", "claimed_by"}``
        (``Requester.to_json``), kept with the verb."""
        if verb not in QUEUEABLE_VERBS:
            raise ValueError(f"{verb!r} cannot be queued (one of {', '.join(QUEUEABLE_VERBS)})")
        request = QueuedRequest(
            id=uuid.uuid4().hex, verb=verb, at=at.isoformat(), via=via, body=body,
            sender=Requester.from_json(requester or {}),
        )  # fmt: skip

        def append(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            if any(e["id"] == request.id for e in entries):
                return None  # an earlier attempt landed after all
            if len(entries) >= self.limit:
                raise InboxFullError(
                    f"{len(entries)} requests already wait for the leader; it applies none"
                )
            return [*entries, request.to_json()]

        self._change(f"queue {verb}", append)
        return request

    def remove(self, ids: Collection[str]) -> None:
        """Remove exactly these entries; any other (one queued meanwhile) stays."""
        gone = set(ids)
        if not gone:
            return

        def without(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            kept = [e for e in entries if e["id"] not in gone]
            return kept if len(kept) != len(entries) else None

        self._change(f"remove {len(gone)} applied request(s)", without)

    def _read(self) -> VersionedDocument:
        try:
            return self.store.read_versioned()
        except ClusterError as error:
            raise InboxUnavailableError(f"cannot read the inbox: {error}") from None

    def _change(
        self, what: str, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]
    ) -> None:
        """Read, edit (None: nothing to write), write if unchanged; again on a conflict."""
        for attempt in range(1, self.attempts + 1):
            current = self._read()
            changed = edit(_entries(current.document))
            if changed is None:
                return
            try:
                self.store.write_if_unchanged(changed, current.version)
                return
            except WriteConflictError:
                log.info(
                    "inbox changed meanwhile; reading it again",
                    extra={"fields": {"what": what, "attempt": attempt}},
                )
            except ClusterError as error:
                raise InboxUnavailableError(f"cannot write the inbox ({what}): {error}") from None
        raise InboxUnavailableError(
            f"cannot write the inbox ({what}): other writers came first {self.attempts} times"
        )


class MemoryVersionedStore:
    """A ``VersionedStore`` in memory (a single replica without a cluster, and tests)."""

    def __init__(self) -> None:
        self._document: Any = None
        self._version = 0
        self._lock = threading.Lock()

    def read_versioned(self) -> VersionedDocument:
        with self._lock:
            return VersionedDocument(
                document=self._document, version=str(self._version) if self._version else None
            )

    def write_if_unchanged(self, document: Any, version: str | None) -> None:
        with self._lock:
            current = str(self._version) if self._version else None
            if version != current:
                raise WriteConflictError(f"version {version} is stale (now {current})")
            self._document = document
            self._version += 1
