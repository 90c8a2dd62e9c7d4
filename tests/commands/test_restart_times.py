"""``analyze --restarted-at`` reads relative times ("2h ago") and refuses future ones with
exit 2 naming the flag, before any data source is contacted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analyzer.cli import main
from analyzer.core.restart_times import RestartTimeError, parse_restart_time

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DEAD = "http://127.0.0.1:9"  # never reached: bad input is refused first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h ago", NOW - timedelta(hours=2)),
        ("90m ago", NOW - timedelta(minutes=90)),
        ("1h30m ago", NOW - timedelta(minutes=90)),
        ("  45s AGO ", NOW - timedelta(seconds=45)),
        ("2026-11-30T01:30:00Z", datetime(2026, 11, 30, 1, 30, tzinfo=UTC)),
        ("2026-11-30T02:30:00+01:00", datetime(2026, 11, 30, 1, 30, tzinfo=UTC)),
        ("2026-11-30T12:00:00Z", NOW),
    ],
)
def test_absolute_and_relative_times(text, expected):
    assert parse_restart_time(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-30T12:00:01Z", "is in the future"),
        ("2026-11-30T01:30:00", "has no timezone"),
        ("two hours ago", "e.g. 2h ago"),
        ("0s ago", "must be positive"),
        ("yesterday", "not a time"),
    ],
)
def test_what_is_refused(text, message):
    with pytest.raises(RestartTimeError, match=message):
        parse_restart_time(text, NOW)


def _analyze(*args: str) -> int:
    return main(["analyze", "--namespace", "catalog", "--prometheus-url", DEAD, *args])


def test_a_future_restart_is_exit_2_naming_the_flag(capsys):
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _analyze("--restarted-at", future) == 2
    err = capsys.readouterr().err
    assert "--restarted-at:" in err and "is in the future" in err


def test_a_bad_line_of_the_restarts_file_is_named(tmp_path, capsys):
    restarts = tmp_path / "restarts.txt"
    restarts.write_text("# past restarts\n2026-11-20T01:30:00Z\n\nnext tuesday\n")
    assert _analyze("--restarts-file", str(restarts)) == 2
    assert f"--restarts-file {restarts}:4: not a time: 'next tuesday'" in capsys.readouterr().err


def test_no_restart_time_at_all_is_exit_2(capsys):
    assert _analyze() == 2
    assert "--restarted-at TIME (repeatable) or --restarts-file FILE" in capsys.readouterr().err


def test_a_report_covers_one_restart(tmp_path, capsys):
    assert _analyze("--restarted-at", "2h ago", "--restarted-at", "3h ago",
                    "--report", str(tmp_path / "r.html")) == 2  # fmt: skip
    assert "--report: an HTML report covers one restart" in capsys.readouterr().err


def test_last_n_reads_the_restart_history_and_names_it_when_it_has_nothing(tmp_path, capsys):
    history = tmp_path / "restarts.jsonl"
    assert _analyze("--last", "3", "--history", str(history)) == 2
    err = capsys.readouterr().err
    assert f"--last 3: the restart history {history} records no restart of catalog" in err
    history.write_text(
        '{"event": "restarted", "source": "upgrade", "namespace": "catalog",'
        ' "restarted_at": "2026-11-20T01:30:00Z"}\n{"event": "restarted"}\n'
    )
    assert _analyze("--last", "3", "--history", str(history)) == 2
    assert f"--last: {history}: line 2: source" in capsys.readouterr().err
    assert _analyze("--last", "0", "--history", str(history)) == 2
    assert "--last must be a positive number" in capsys.readouterr().err


def test_last_n_with_a_recorded_restart_goes_on_to_prometheus(tmp_path, capsys):
    history = tmp_path / "restarts.jsonl"
    history.write_text(
        '{"event": "restarted", "source": "shadow", "namespace": "catalog",'
        ' "restarted_at": "2026-11-20T01:30:00Z"}\n'
    )
    assert _analyze("--last", "5", "--history", str(history)) == 4  # read, then unreachable
