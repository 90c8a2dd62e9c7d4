"""The command line answers --help for every subcommand of the contract."""

import pytest

from analyzer.cli import build_parser, main

CONTRACT_COMMANDS = [
    "rules", "analyze", "upgrade", "serve", "status", "pause", "resume", "approve", "abort",
    "demo", "sim", "bench",
]


@pytest.mark.parametrize("command", CONTRACT_COMMANDS)
def test_every_contract_command_is_registered(command):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert command in subparsers.choices


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["upgrade", "serve"])
def test_alert_flags_reach_the_settings(command):
    from analyzer.commands.common import settings_from_args

    extra = ["--to-revision", "1-15-4"] if command == "upgrade" else []
    args = build_parser().parse_args(
        [command, *extra, "--alertmanager-url", "http://am:9093", "--webhook-url", "http://hook"]
    )
    notifications = settings_from_args(args).notifications
    assert (notifications.alertmanager_url, notifications.webhook_url) == (
        "http://am:9093",
        "http://hook",
    )
