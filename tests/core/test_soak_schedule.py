"""The soak's pure decisions (analyzer/core/upgrade/soak.py): when each look is due, which
recent window it judges, and which hours before the upgrade it is compared with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from analyzer.core.upgrade.soak import (
    after_window,
    baseline_window,
    due_look,
    look_times,
    next_look,
    soak_windows,
)
from analyzer.core.windows import Window, WindowError

PROMOTED = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
STARTED = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # the tag moved at 01:00
H = timedelta(hours=1)
DELAY = timedelta(seconds=30)


def test_looks_start_once_a_whole_window_follows_the_promotion_and_stop_at_the_soak_end():
    looks = look_times(PROMOTED, 24 * H, H, H, DELAY)
    assert looks[0] == PROMOTED + H + DELAY  # the first window lies wholly after it
    assert all(b - a == H for a, b in pairwise(looks))
    assert looks[-1] <= PROMOTED + 24 * H < looks[-1] + H
    assert len(looks) == 23


def test_no_looks_when_turned_off_or_the_soak_is_shorter_than_a_window():
    assert look_times(PROMOTED, 24 * H, timedelta(0), H, DELAY) == []
    assert look_times(PROMOTED, timedelta(minutes=30), H, H, DELAY) == []


def test_the_due_look_is_the_latest_one_passed_and_missed_looks_are_not_made_up():
    first = PROMOTED + H + DELAY
    assert due_look(PROMOTED, 24 * H, H, H, DELAY, None, first - timedelta(seconds=1)) is None
    assert due_look(PROMOTED, 24 * H, H, H, DELAY, None, first) == first
    assert due_look(PROMOTED, 24 * H, H, H, DELAY, first, first + timedelta(minutes=5)) is None
    # the service was down for five hours: one look, at the latest time, not five
    later = first + 5 * H + timedelta(minutes=3)
    assert due_look(PROMOTED, 24 * H, H, H, DELAY, first, later) == first + 5 * H
    assert next_look(PROMOTED, 24 * H, H, H, DELAY, later) == first + 6 * H
    assert next_look(PROMOTED, 24 * H, H, H, DELAY, PROMOTED + 24 * H) is None


def test_the_baseline_is_the_same_clock_time_before_the_upgrade():
    at = PROMOTED + 5 * H  # 08:00: judges 07:00–08:00 (less the delay)
    after = after_window(at, H, DELAY)
    assert after == Window(at - DELAY - H, at - DELAY)
    night_before = baseline_window(after, STARTED, timedelta(hours=24))
    assert night_before.start == after.start - timedelta(hours=24)
    assert night_before.end <= STARTED and night_before.length == after.length
    # a window the day after would overlap the upgrade's own hours: two days back instead
    at = STARTED + 24 * H + timedelta(minutes=20)
    after = after_window(at, H, DELAY)
    shifted = baseline_window(after, STARTED, timedelta(hours=24))
    assert shifted.start == after.start - timedelta(hours=48)
    assert shifted.end <= STARTED


def test_candidates_follow_the_configured_order_night_before_then_week_before():
    at = PROMOTED + 5 * H
    day, week = timedelta(hours=24), timedelta(days=7)
    candidates = soak_windows(at, H, DELAY, timedelta(minutes=1), STARTED, (day, week))
    assert [c.after.start - c.before.start for c in candidates] == [day, week]
    assert all(c.after == candidates[0].after for c in candidates)
    with pytest.raises(WindowError):
        baseline_window(candidates[0].after, STARTED, timedelta(0))
    with pytest.raises(WindowError):
        soak_windows(at, H, DELAY, 2 * H, STARTED, (day,))
