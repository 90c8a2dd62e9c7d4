"""The inbox's own rules, on an in-memory versioned store: order, exact removal, bounded
retries on conflicts, a size limit, and stored garbage that never blocks it.

Why: a verb an operator sent to a standby must reach the leader exactly as queued or be
refused with a reason; these cases are cheaper to pin here than on the fake API server
(tests/service/test_standby_inbox.py runs the same code there)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analyzer.core.ports import ClusterUnreachableError, WriteConflictError
from analyzer.service.control import Requester
from analyzer.service.inbox import (
    ControlInbox,
    InboxFullError,
    InboxUnavailableError,
    MemoryVersionedStore,
)

AT = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


class AlwaysAnotherWriterFirst(MemoryVersionedStore):
    """Every conditional write loses to another writer."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write_if_unchanged(self, document, version) -> None:
        self.writes += 1
        raise WriteConflictError("another writer came first")


class Unreachable(MemoryVersionedStore):
    def read_versioned(self):
        raise ClusterUnreachableError("API server: HTTP 503 (after 6 attempts)")


def test_verbs_come_back_in_order_and_removal_takes_exactly_the_ones_named():
    inbox = ControlInbox(MemoryVersionedStore())
    pause = inbox.queue("pause", AT, "replica-b")
    upgrade = inbox.queue("upgrade", AT, "replica-c", {"to_revision": "1-15-4"})
    resume = inbox.queue("resume", AT, "replica-b")
    assert [r.verb for r in inbox.pending()] == ["pause", "upgrade", "resume"]
    assert inbox.pending()[1].body == {"to_revision": "1-15-4"}
    assert (
        inbox.pending()[0].describe() == f"pause queued via standby replica-b at {AT.isoformat()}"
    )
    inbox.remove([pause.id, upgrade.id, "not-there"])
    assert [r.id for r in inbox.pending()] == [resume.id]


def test_a_write_that_always_conflicts_gives_up_after_the_attempts_and_says_so():
    store = AlwaysAnotherWriterFirst()
    with pytest.raises(InboxUnavailableError, match="other writers came first 3 times"):
        ControlInbox(store, attempts=3).queue("pause", AT, "replica-b")
    assert store.writes == 3


def test_an_unreachable_store_is_an_inbox_error():
    with pytest.raises(InboxUnavailableError, match="HTTP 503"):
        ControlInbox(Unreachable()).queue("pause", AT, "replica-b")


def test_a_full_inbox_refuses_more():
    inbox = ControlInbox(MemoryVersionedStore(), limit=2)
    inbox.queue("pause", AT, "b")
    inbox.queue("resume", AT, "b")
    with pytest.raises(InboxFullError, match="2 requests already wait"):
        inbox.queue("pause", AT, "b")


def test_only_known_verbs_are_queued():
    with pytest.raises(ValueError, match="'restart' cannot be queued"):
        ControlInbox(MemoryVersionedStore()).queue("restart", AT, "b")


def test_stored_garbage_is_left_out_and_replaced_by_the_next_write():
    store = MemoryVersionedStore()
    store.write_if_unchanged([{"verb": "pause"}, "junk", {"id": "kept", "verb": "resume"}], None)
    inbox = ControlInbox(store)
    assert [r.id for r in inbox.pending()] == ["kept"]
    inbox.queue("pause", AT, "b")
    stored = store.read_versioned().document
    assert len(stored) == 2 and stored[0]["id"] == "kept" and stored[1]["verb"] == "pause"
    store.write_if_unchanged({"not": "a list"}, store.read_versioned().version)
    assert inbox.pending() == []


def test_the_whole_requester_survives_the_queue_as_the_http_layer_gave_it():
    """A verb sent through an authenticating proxy (``service.user_header``) keeps the
    header that named its sender and the different name the caller claimed; the leader
    rebuilds the same ``Requester`` a verb sent to it directly carries."""
    sent = Requester(actor="alice@example.com", reason="db migration",
                     authenticated_by="X-Remote-User", claimed_by="mallory")  # fmt: skip
    inbox = ControlInbox(MemoryVersionedStore())
    inbox.queue("pause", AT, "replica-b", requester=sent.to_json())
    (waiting,) = inbox.pending()
    assert Requester.from_json(waiting.requester) == sent
    assert waiting.to_json()["claimed_by"] == "mallory"
    # a claim is kept apart only beside an authenticated name, never on its own
    unauthenticated = {"requested_by": "bob", "claimed_by": "mallory"}
    assert Requester.from_json(unauthenticated) == Requester(actor="bob")
