"""The service memory (queued request, pause, soak, prune) as a new leader reloads it from
the state ConfigMap: an operator's verb that lands while the read is on its way is kept.

Seen for real: ``make demo`` posted its upgrade request in the same second the service
became leader; the first pass's reload read the ConfigMap before the verb's write and
assigned what it read after it, so the request vanished and the night never started.
"""

from __future__ import annotations

import threading

from analyzer.service.control import UpgradeRequestBody
from analyzer.service.engine import MemoryStateStore
from tests.service.harness import make_service, run_tick


class OvertakenStore(MemoryStateStore):
    """The memory's ConfigMap key behind a slow API server: the next read, once armed, is
    answered only after a write (or a second) has passed it."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.reading = threading.Event()
        self.written = threading.Event()

    def arm(self) -> None:
        """The next read is overtaken by the next write."""
        self.written.clear()
        self.armed = True

    def load(self):
        document = self.document
        if self.armed:
            self.armed = False
            self.reading.set()
            # a write may overtake this read, unless the reader holds the memory's lock
            self.written.wait(timeout=1.0)
        return document

    def save(self, document) -> None:
        super().save(document)
        self.written.set()


def overtaken(store: OvertakenStore, reread, verb):
    """Run ``verb`` while ``reread`` (a new leader's re-read from ``store``) is on its way;
    what the verb answered."""
    store.arm()
    reader = threading.Thread(target=reread)
    reader.start()
    assert store.reading.wait(timeout=30)
    answer = verb()
    reader.join(timeout=30)
    assert not reader.is_alive()
    return answer


def test_a_request_made_while_the_memory_is_reloaded_is_kept(tmp_path):
    store = OvertakenStore()
    service, *_ = make_service(tmp_path, service_store=store)
    answer = overtaken(store, service.context.reload_memory,
                       lambda: service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4")))
    assert answer["request"] == {"to_revision": "1-15-4"}
    assert service.context.memory.request == {"to_revision": "1-15-4"}
    assert store.document["request"] == {"to_revision": "1-15-4"}


def test_a_pause_made_while_the_memory_is_reloaded_is_kept(tmp_path):
    store = OvertakenStore()
    service, *_ = make_service(tmp_path, service_store=store)
    overtaken(store, service.context.reload_memory, service.pause)
    assert service.context.memory.paused


def test_a_note_recorded_while_the_timeline_is_reloaded_is_kept(tmp_path):
    """The same for the timeline: a pause's note, recorded while a new leader reads the
    stored timeline, stays in it, after the stored items, and is written."""
    timeline_store = OvertakenStore()
    service, *_ = make_service(tmp_path, timeline_store=timeline_store)
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    stored = list(service.context.timeline.items)
    assert stored and timeline_store.document is not None
    overtaken(timeline_store, service.context.timeline.load, service.pause)
    items = service.context.timeline.items
    assert items[: len(stored)] == stored
    assert items[-1]["reason"] == "Paused"
    assert service.context.timeline.save()
    assert timeline_store.document["items"][-1]["reason"] == "Paused"
