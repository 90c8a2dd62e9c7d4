"""The kept timeline on its own: items round-trip through the stored JSON with their times,
the report renders them the same after a restart, the timeline stays bounded, and it is
written when items are added and only then. (A failing write, against the simulated API
server: tests/service/test_timeline_kept.py.)

Why: a restarted service shows what it reads back; a time that comes back shifted, naive or
as text would put the night's steps at the wrong hour in the report and on the status page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from analyzer.core.upgrade import Note, Outcome, UpgradePlan, UpgradeState, UpgradeSummary, start
from analyzer.service.engine import MemoryStateStore
from analyzer.service.timeline import (
    TIMELINE_LIMIT,
    TIMELINE_MAX_BYTES,
    KeptTimeline,
    TimelineFormatError,
    TimelineRecorder,
    item_from_json,
    item_to_json,
    timeline_document,
    timeline_from_document,
)
from analyzer.views.reports import render_upgrade_report

NIGHT = datetime(2026, 11, 27, 1, 30, 15, 250000, tzinfo=UTC)
BERLIN = timezone(timedelta(hours=1))


def plan(upgrade_id: str = "1-15-4-20261127T013000") -> UpgradePlan:
    return UpgradePlan(
        upgrade_id=upgrade_id,
        tag="default",
        from_revision="1-14-6",
        to_revision="1-15-4",
        waves=(("accounts",), ("billing", "catalog")),
        before=timedelta(minutes=10),
        settle=timedelta(minutes=2),
        after=timedelta(minutes=10),
        step=timedelta(minutes=1),
        rollout_timeout=timedelta(minutes=5),
        poll_interval=timedelta(seconds=10),
    )


def state_at(at: datetime, upgrade_id: str = "1-15-4-20261127T013000") -> UpgradeState:
    return start(plan(upgrade_id), at).state


def night_items() -> list[dict]:
    """Items as the recorder makes them from the engine's notes, at several offsets."""
    recorder = TimelineRecorder()
    recorder(state_at(NIGHT), [Note(message="tag default 1-14-6 → 1-15-4", reason="TagMoved")])
    recorder(
        state_at(NIGHT.astimezone(BERLIN) + timedelta(minutes=3)),
        [Note(message="restarting namespace accounts <wave 1>", reason="Restarting",
              namespace="accounts")],
    )  # fmt: skip
    recorder(
        state_at(NIGHT + timedelta(minutes=20)),
        [Note(message="error-rate: 0.1% → 5.2% \"fail\"", reason="RollingBack",
              namespace="accounts", warning=True)],
    )  # fmt: skip
    return recorder.timeline


def through_the_configmap(document: dict) -> dict:
    """What the ConfigMap adapter writes and reads back: JSON text."""
    return json.loads(json.dumps(document, sort_keys=True))


def test_items_round_trip_with_their_times():
    items = night_items()
    upgrade_id, back = timeline_from_document(
        through_the_configmap(timeline_document(items, "u-1"))
    )
    assert upgrade_id == "u-1"
    assert back == items  # message, reason, namespace, warning and the instant itself
    for original, loaded in zip(items, back, strict=True):
        assert isinstance(loaded["at"], datetime) and loaded["at"].tzinfo is not None
        assert loaded["at"].utcoffset() == original["at"].utcoffset()
        assert loaded["at"].isoformat() == original["at"].isoformat()  # status shows the same


def test_a_naive_time_is_stored_as_utc():
    item = {"at": datetime(2026, 11, 27, 1, 30), "message": "m", "reason": "r"}
    stored = item_to_json(item)
    assert stored["at"] == "2026-11-27T01:30:00+00:00"
    assert item_from_json(stored)["at"] == datetime(2026, 11, 27, 1, 30, tzinfo=UTC)


def test_the_report_renders_a_loaded_timeline_as_the_original():
    items = night_items()
    _, back = timeline_from_document(through_the_configmap(timeline_document(items, "u-1")))
    summary = UpgradeSummary.of(state_at(NIGHT).model_copy(update={"outcome": Outcome.ROLLED_BACK}))
    original = render_upgrade_report(summary, items)
    loaded = render_upgrade_report(summary, back)

    def rows(html: str) -> str:
        start = html.index('<table class="timeline">')
        return html[start : html.index("</table>", start)]

    assert rows(loaded) == rows(original)
    assert "2026-11-27 01:33:15" in rows(loaded)  # the Berlin-offset item, shown in UTC


def test_the_document_keeps_the_newest_items():
    items = [{"at": NIGHT + timedelta(seconds=i), "message": f"m{i}"} for i in range(12)]
    document = timeline_document(items, "u-1", limit=5)
    assert [item["message"] for item in document["items"]] == ["m7", "m8", "m9", "m10", "m11"]
    assert TIMELINE_LIMIT == 500


def test_the_document_stays_small_enough_for_the_configmap():
    long = "x" * 1000
    items = [{"at": NIGHT + timedelta(seconds=i), "message": f"{i} {long}"} for i in range(50)]
    document = timeline_document(items, "u-1", max_bytes=10_000)
    assert len(json.dumps(document, sort_keys=True)) < 10_000 + 200  # the envelope aside
    assert document["items"] and document["items"][-1]["message"].startswith("49 ")  # newest kept
    assert len(document["items"]) < 10
    assert len(json.dumps(timeline_document(items * 10, "u-1"))) <= TIMELINE_MAX_BYTES + 200


@pytest.mark.parametrize(
    "document",
    [
        {"format": 99, "upgrade_id": "u", "items": []},
        {"upgrade_id": "u", "items": []},
        {"format": 1, "upgrade_id": "u", "items": "nope"},
        {"format": 1, "upgrade_id": "u", "items": [{"message": "no time"}]},
        {"format": 1, "upgrade_id": "u", "items": [{"at": "last night", "message": "m"}]},
        {"format": 1, "upgrade_id": "u", "items": ["text"]},
    ],
)
def test_an_unreadable_document_is_refused(document):
    with pytest.raises(TimelineFormatError):
        timeline_from_document(document)


def note(text: str, namespace: str | None = None) -> Note:
    return Note(message=text, reason="Step", namespace=namespace)


def test_kept_timeline_writes_when_items_are_added_and_only_then():
    store = MemoryStateStore()
    timeline = KeptTimeline(store)
    timeline.reset("u-1")
    assert store.saves == 0  # a new timeline has nothing to write yet
    timeline.record(state_at(NIGHT, "u-1"), [])  # a step without notes
    assert store.saves == 0
    timeline.record(state_at(NIGHT, "u-1"), [note("one"), note("two", "accounts")])
    assert store.saves == 1
    for _ in range(3):
        assert timeline.save() is True  # loop passes with nothing new
    assert store.saves == 1
    timeline.record(state_at(NIGHT + timedelta(minutes=1), "u-1"), [note("three")])
    assert store.saves == 2
    upgrade_id, items = timeline_from_document(through_the_configmap(store.document))
    assert upgrade_id == "u-1" and items == timeline.items
    assert [i["message"] for i in items] == ["one", "two", "three"]


def test_a_restarted_timeline_loads_what_the_last_one_wrote():
    store = MemoryStateStore()
    before = KeptTimeline(store)
    before.record(state_at(NIGHT, "u-1"), [note("tag moved"), note("restarted", "accounts")])
    after = KeptTimeline(store)
    assert after.load("u-1") is True
    assert after.items == before.items and after.upgrade_id == "u-1"
    assert not after.unsaved  # loading is no reason to write
    after.record(state_at(NIGHT + timedelta(minutes=5), "u-1"), [note("judged")])
    assert [i["message"] for i in store.document["items"]] == ["tag moved", "restarted", "judged"]


def test_another_upgrade_never_shares_a_timeline():
    store = MemoryStateStore()
    timeline = KeptTimeline(store)
    timeline.record(state_at(NIGHT, "u-1"), [note("old upgrade")])
    fresh = KeptTimeline(store)
    assert fresh.load("u-2") is False and fresh.items == []  # stored one is of u-1
    timeline.record(state_at(NIGHT + timedelta(days=1), "u-2"), [note("new upgrade")])
    assert [i["message"] for i in timeline.items] == ["new upgrade"]
    assert store.document["upgrade_id"] == "u-2"


def test_the_kept_timeline_is_bounded_in_memory_and_in_the_store():
    store = MemoryStateStore()
    timeline = KeptTimeline(store, limit=3)
    for i in range(5):
        timeline.record(state_at(NIGHT + timedelta(seconds=i), "u-1"), [note(f"n{i}")])
    assert [i["message"] for i in timeline.items] == ["n2", "n3", "n4"]
    assert [i["message"] for i in store.document["items"]] == ["n2", "n3", "n4"]
