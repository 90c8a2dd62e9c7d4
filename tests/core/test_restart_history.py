"""The restart history's schema and the choice of the last N restarts (``core.restart_history``).

The history is a promise like the CLI's: a line written by this release is read back by the
next; a line that is not a record is refused with its line number.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from analyzer.core.restart_history import (
    SCHEMA_VERSION,
    HistoryLineError,
    RestartRecord,
    last_restarts,
    new_records,
    parse_line,
)

T0 = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)


def restarted(namespace: str, at: datetime, source: str = "upgrade") -> RestartRecord:
    return RestartRecord(event="restarted", source=source, namespace=namespace, restarted_at=at)


def test_a_record_is_one_json_line_with_the_promised_fields():
    line = restarted("shop", T0).model_dump_json()
    assert "\n" not in line
    document = json.loads(line)
    assert set(document) == {"schema_version", "event", "source", "namespace", "restarted_at",
                             "upgrade_id", "verdict", "reason"}  # fmt: skip
    assert document["schema_version"] == SCHEMA_VERSION == 1
    assert parse_line(line, 1) == restarted("shop", T0)


def test_unknown_fields_of_a_later_release_are_ignored_and_bad_lines_named():
    later = json.dumps({"event": "restarted", "source": "shadow", "namespace": "a",
                        "restarted_at": T0.isoformat(), "new_field": 3})  # fmt: skip
    assert parse_line(later, 1).source == "shadow"
    with pytest.raises(HistoryLineError, match="line 7: event"):
        parse_line(json.dumps({"event": "moved", "source": "upgrade", "namespace": "a",
                               "restarted_at": T0.isoformat()}), 7)  # fmt: skip
    with pytest.raises(HistoryLineError, match="line 2"):
        parse_line("not json", 2)


def test_the_last_n_restarts_of_one_namespace_oldest_first_each_once_none_in_the_future():
    records = [restarted("shop", T0 + timedelta(days=d)) for d in range(12)]
    records += [restarted("shop", T0 + timedelta(days=3), source="shadow")]  # the same restart
    records += [restarted("other", T0 + timedelta(days=20))]
    records += [RestartRecord(event="judged", source="upgrade", namespace="shop",
                              restarted_at=T0 + timedelta(days=30), verdict="pass")]  # fmt: skip
    now = T0 + timedelta(days=10, hours=1)  # the restart on day 11 is in the future
    picked = last_restarts(records, "shop", 10, now)
    assert picked == [T0 + timedelta(days=d) for d in range(1, 11)]
    assert last_restarts(records, "shop", 3, now)[0] == T0 + timedelta(days=8)
    assert last_restarts(records, "nowhere", 3, now) == []


def test_new_records_are_written_once():
    known: set = set()
    first = [restarted("a", T0), restarted("b", T0)]
    assert new_records(known, first) == first
    assert new_records(known, [restarted("a", T0), restarted("a", T0 + timedelta(1))]) == [
        restarted("a", T0 + timedelta(1))
    ]
