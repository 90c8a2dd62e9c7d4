"""Maintenance hours (``--window-cron``/``--window-duration``) open at the cron time for the
duration, in the right timezone."""

from datetime import UTC, datetime, timedelta

import pytest

from analyzer.errors import BadInputError
from analyzer.service.maintenance import MaintenanceHours

BERLIN_1AM = MaintenanceHours("0 1 * * *", timedelta(hours=4), "Europe/Berlin")


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_open_inside_the_window_with_its_end():
    state = BERLIN_1AM.state(at(1))  # 02:00 Berlin (UTC+1 in November)
    assert state.open and state.closes_at == at(4)


def test_closed_before_start_and_after_end_with_next_start():
    before = BERLIN_1AM.state(at(23, 59, day=26))  # 00:59 Berlin
    assert not before.open and before.opens_at == at(0)
    after = BERLIN_1AM.state(at(4))  # 05:00 Berlin: the window is half-open
    assert not after.open and after.opens_at == at(0, day=28)


def test_summer_time_shifts_the_utc_start():
    state = BERLIN_1AM.state(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))  # 02:30 CEST
    assert state.open and state.closes_at == datetime(2026, 7, 1, 3, 0, tzinfo=UTC)


def test_no_cron_is_always_open():
    assert MaintenanceHours(None, timedelta(0)).state(at(12)).open


@pytest.mark.parametrize("cron", ["61 1 * * *", "nonsense", "* * *"])
def test_invalid_cron_is_bad_input(cron):
    with pytest.raises(BadInputError):
        MaintenanceHours(cron, timedelta(hours=1))


def test_invalid_timezone_is_bad_input():
    with pytest.raises(BadInputError):
        MaintenanceHours("0 1 * * *", timedelta(hours=1), "Mars/Olympus")
