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


@pytest.mark.parametrize(
    ("macro", "opens_at"),
    [
        ("@daily", datetime(2026, 11, 27, 23, 0, tzinfo=UTC)),  # midnight Berlin
        ("@midnight", datetime(2026, 11, 27, 23, 0, tzinfo=UTC)),
        ("@hourly", datetime(2026, 11, 27, 13, 0, tzinfo=UTC)),
        ("@weekly", datetime(2026, 11, 28, 23, 0, tzinfo=UTC)),  # Sunday 29th, 00:00 Berlin
        ("@monthly", datetime(2026, 11, 30, 23, 0, tzinfo=UTC)),  # 1 December, 00:00 Berlin
        ("@yearly", datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),
    ],
)
def test_cron_macros_open_when_cron_would_run(macro, opens_at):
    hours = MaintenanceHours(macro, timedelta(minutes=30), "Europe/Berlin")
    state = hours.state(at(12, 30))  # Friday 27 November, 13:30 Berlin
    assert not state.open and state.opens_at == opens_at


@pytest.mark.parametrize("macro", ["@reboot", "@nightly"])
def test_an_unknown_macro_is_bad_input_naming_it(macro):
    with pytest.raises(BadInputError, match=f"unknown cron macro '{macro}'"):
        MaintenanceHours(macro, timedelta(hours=1))


@pytest.mark.parametrize(
    ("cron", "opens_at"),
    [
        ("0 1 * * 1-5", at(0, day=30)),  # Monday 30th 01:00 Berlin, not Saturday 28th
        ("0 1 * * 0", at(0, day=29)),  # Sunday, as in cron(5)
        ("0 1 * * 7", at(0, day=29)),
        ("0 1 * * 6", at(0, day=28)),  # Saturday
    ],
)
def test_numeric_days_of_the_week_are_crons(cron, opens_at):
    hours = MaintenanceHours(cron, timedelta(minutes=30), "Europe/Berlin")
    assert hours.state(at(12, 30)).opens_at == opens_at
