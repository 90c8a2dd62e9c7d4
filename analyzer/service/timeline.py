"""The upgrade timeline kept in the cluster, so a restarted service or a new leader still
tells the whole story of the night.

Why it exists: the ``TimelineRecorder`` (tag move, restarts, verdicts, rollback
notes) lives in memory, and on-call reads it in ``/api/status`` and in the upgrade report.
A new pod (a restart, a leader change) used to start with an empty one. ``KeptTimeline``
wraps the recorder and keeps a copy as one JSON document under its own key of the state
ConfigMap (any ``StateStore``; the service uses key ``timeline``):

- written whenever items were appended, and only then: a loop pass with nothing new never
  writes; a failed write (API error) is logged, the items stay in memory, and the next
  append or loop pass writes them (the whole document, so nothing is lost in between);
- loaded when the service starts, when it becomes leader, and on each pass of a standby
  (which thus shows the leader's timeline);
- one timeline per upgrade: the document names its upgrade, and a stored timeline of
  another upgrade is never shown with the current one;
- bounded: the last ``TIMELINE_LIMIT`` items, in memory and in the ConfigMap, and the
  stored ones within ``TIMELINE_MAX_BYTES`` (a ConfigMap holds at most 1 MiB, shared with
  the engine's state; a write that can never fit would fail on every retry);
- timestamps are ISO 8601 with their UTC offset and come back as aware datetimes, so the
  report and the status page render them exactly as before a restart.

Nothing here raises into the caller: the service loop and the engine go on whatever the
cluster answers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from analyzer.core.ports import ClusterError, StateStore

log = logging.getLogger("canary_analyzer.timeline")

#: How many timeline items are kept (the newest); older ones are dropped.
TIMELINE_LIMIT = 500
#: At most this much JSON is stored (the oldest items are left out beyond it).
TIMELINE_MAX_BYTES = 256 * 1024
#: Version of the stored document; a document of another version is not read.
TIMELINE_FORMAT = 1


class TimelineFormatError(ValueError):
    """A stored timeline document this version cannot read."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def item_to_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """One timeline item as JSON-ready data: ``at`` becomes ISO 8601 with its offset (a
    naive time is taken as UTC, as the report does)."""
    data = dict(item)
    at = data.get("at")
    if isinstance(at, datetime):
        data["at"] = _aware(at).isoformat()
    return data


def item_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``item_to_json``: ``at`` back to an aware datetime."""
    if not isinstance(data, Mapping):
        raise TimelineFormatError(f"a timeline item must be an object, not {type(data).__name__}")
    item = dict(data)
    at = item.get("at")
    if not isinstance(at, str):
        raise TimelineFormatError(f"a timeline item needs its time as text: {item!r}")
    try:
        item["at"] = _aware(datetime.fromisoformat(at))
    except ValueError:
        raise TimelineFormatError(f"timeline item time {at!r} is not ISO 8601") from None
    return item


def timeline_document(
    items: Iterable[Mapping[str, Any]],
    upgrade_id: str | None,
    limit: int = TIMELINE_LIMIT,
    max_bytes: int = TIMELINE_MAX_BYTES,
) -> dict[str, Any]:
    """The stored form: ``{"format", "upgrade_id", "items": [...]}`` with the last ``limit``
    items, fewer if their JSON would exceed ``max_bytes``."""
    kept = [item_to_json(item) for item in (list(items)[-limit:] if limit > 0 else [])]
    sizes = [len(json.dumps(item, sort_keys=True)) + 2 for item in kept]
    first, total = 0, sum(sizes)
    while first < len(kept) and total > max_bytes:
        total -= sizes[first]
        first += 1
    return {"format": TIMELINE_FORMAT, "upgrade_id": upgrade_id, "items": kept[first:]}


def timeline_from_document(document: Mapping[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """``(upgrade_id, items)`` of a stored document; ``TimelineFormatError`` if unreadable."""
    if not isinstance(document, Mapping) or document.get("format") != TIMELINE_FORMAT:
        found = document.get("format") if isinstance(document, Mapping) else document
        raise TimelineFormatError(f"timeline format {found!r} is not supported")
    items = document.get("items")
    if not isinstance(items, list):
        raise TimelineFormatError("the timeline document has no list of items")
    upgrade_id = document.get("upgrade_id")
    return (str(upgrade_id) if upgrade_id is not None else None), [
        item_from_json(item) for item in items
    ]


def _upgrade_id_of(state: Any) -> str | None:
    plan = getattr(state, "plan", None)
    upgrade_id = getattr(plan, "upgrade_id", None)
    return str(upgrade_id) if upgrade_id is not None else None


class TimelineRecorder:
    """Collects the engine's notes as timeline items; usable as the engine's ``observer``
    (``(state, notes, pending)``) or called from another observer."""

    def __init__(self) -> None:
        self.timeline: list[dict[str, Any]] = []

    def __call__(self, state: Any, notes: Iterable[Any], pending: Any = None) -> None:
        at = getattr(state, "updated_at", None) or datetime.now(UTC)
        for note in notes:
            self.add(note, at)

    def add(self, note: Any, at: datetime, requester: Mapping[str, str] | None = None) -> None:
        """Append one note at ``at``; ``requester``: who sent the verb it tells of
        (``Requester.to_json``), kept on the item under ``requester``."""
        item: dict[str, Any] = {
            "at": at,
            "message": getattr(note, "message", str(note)),
            "reason": getattr(note, "reason", ""),
            "namespace": getattr(note, "namespace", None),
            "warning": bool(getattr(note, "warning", False)),
        }
        if requester:
            item["requester"] = dict(requester)
        self.timeline.append(item)


class KeptTimeline:
    """The timeline of the current upgrade, in memory and in a ``StateStore``.

    Use ``record`` as (or from) the engine's observer; ``items`` for status and report;
    ``reset`` when a new upgrade starts; ``load`` at start and on becoming leader; ``save``
    on each loop pass (it writes only what is not yet written)."""

    def __init__(self, store: StateStore, limit: int = TIMELINE_LIMIT) -> None:
        self.store = store
        self.limit = limit
        self._recorder = TimelineRecorder()
        self._upgrade_id: str | None = None
        self._lock = threading.Lock()  # the items and counters (held briefly)
        self._writing = threading.Lock()  # one write at a time: the newest lands last
        self._version = 0  # items appended so far (never goes back)
        self._written = 0  # ``_version`` as of the last successful write

    @property
    def upgrade_id(self) -> str | None:
        return self._upgrade_id

    @property
    def items(self) -> list[dict[str, Any]]:
        """A copy of the items, oldest first."""
        with self._lock:
            return list(self._recorder.timeline)

    @property
    def unsaved(self) -> bool:
        """Items were appended that the store does not hold yet."""
        with self._lock:
            return self._version != self._written

    def reset(self, upgrade_id: str | None = None) -> None:
        """A new upgrade starts a new timeline (nothing to write until it has items)."""
        with self._lock:
            self._replace([], upgrade_id)

    def _replace(self, items: list[dict[str, Any]], upgrade_id: str | None) -> None:
        """Swap in another timeline (the lock is held); it counts as written."""
        self._recorder.timeline = items[-self.limit :] if self.limit > 0 else []
        self._upgrade_id = upgrade_id
        self._written = self._version

    def record(self, state: Any, notes: Sequence[Any], pending: Any = None) -> None:
        """Append the engine's notes (an observer call) and write them. Never raises."""
        notes = list(notes)
        if not notes:
            return
        upgrade_id = _upgrade_id_of(state)
        with self._lock:
            if upgrade_id is not None and upgrade_id != self._upgrade_id:
                if self._upgrade_id is not None or self._recorder.timeline:
                    self._replace([], upgrade_id)  # another upgrade: its own timeline
                self._upgrade_id = upgrade_id
            self._recorder(state, notes, pending)
            del self._recorder.timeline[: -self.limit or None]
            self._version += len(notes)
        self.save()

    def record_note(
        self, note: Any, at: datetime, requester: Mapping[str, str] | None = None
    ) -> None:
        """Append one note of the service itself (not the engine's: e.g. a verb a standby
        queued, applied or refused) at ``at``, to the current upgrade's timeline, and write
        it. ``requester``: who sent the verb the note tells of (``Requester.to_json``: the
        item's ``requester``). Never raises."""
        with self._lock:
            self._recorder.add(note, _aware(at), requester)
            del self._recorder.timeline[: -self.limit or None]
            self._version += 1
        self.save()

    def save(self) -> bool:
        """Write the timeline if items were appended since the last write. True when the
        store is up to date; on an error the items stay in memory (logged, retried later)."""
        with self._writing:
            with self._lock:
                if self._version == self._written:
                    return True
                version = self._version
                document = timeline_document(self._recorder.timeline, self._upgrade_id, self.limit)
            try:
                self.store.save(document)
            except ClusterError as error:
                log.warning(
                    "could not write the upgrade timeline; kept in memory, written again later",
                    extra={"fields": {"error": str(error), "items": len(document["items"])}},
                )
                return False
            except Exception:  # the timeline must never stop the loop or the engine
                log.exception("could not write the upgrade timeline; kept in memory")
                return False
            with self._lock:
                self._written = max(self._written, version)
            return True

    def load(self, upgrade_id: str | None = None) -> bool:
        """Take the stored timeline, if it belongs to ``upgrade_id`` (any when None).

        A stored timeline of another upgrade is not shown: the timeline starts empty for
        ``upgrade_id`` unless memory already holds that upgrade's. Nothing stored, or an
        unreadable store, keeps memory as it is (unwritten items are written later). True
        when the stored timeline was taken.

        Items appended while the read is on its way (a verb's note in the pass that makes
        this replica leader) are newer than what is read: they are kept after the stored
        items, and written again, not replaced by the older document."""
        with self._lock:
            seen = self._version
        try:
            document = self.store.load()
        except ClusterError as error:
            log.warning(
                "cannot read the upgrade timeline; keeping the one in memory",
                extra={"fields": {"error": str(error)}},
            )
            return False
        except Exception:
            log.exception("cannot read the upgrade timeline; keeping the one in memory")
            return False
        stored: tuple[str | None, list[dict[str, Any]]] | None = None
        if document is not None:
            try:
                stored = timeline_from_document(document)
            except TimelineFormatError as error:
                log.warning(
                    "the stored upgrade timeline cannot be read; it is replaced on the next write",
                    extra={"fields": {"error": str(error)}},
                )
        with self._lock:
            appended = self._version - seen
            newer = self._recorder.timeline[-appended:] if appended > 0 else []
            if stored is not None and (upgrade_id is None or stored[0] == upgrade_id):
                missed = [item for item in newer if item not in stored[1]]
                self._replace(stored[1] + missed, stored[0])
                if missed:  # the read did not hold them: the next save writes them
                    self._written = min(self._written, seen)
                return True
            if upgrade_id is not None and self._upgrade_id != upgrade_id:
                self._replace([], upgrade_id)
            return False
