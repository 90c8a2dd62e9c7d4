"""The command line answers --help for every subcommand of the contract."""

import pytest

from analyzer.cli import build_parser, main

CONTRACT_COMMANDS = [
    "rules", "analyze", "upgrade", "serve", "status", "pause", "resume", "approve", "abort",
    "demo", "sim", "bench", "revisions", "prune", "approve-prune",
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


@pytest.mark.parametrize("command", ["analyze", "upgrade", "serve"])
def test_night_budget_flag_reaches_the_settings_over_the_environment(command, monkeypatch):
    from analyzer.commands.common import settings_from_args

    monkeypatch.setenv("CANARY_RULES__NIGHT_BUDGET", "0.1")
    extra = {
        "analyze": ["--namespace", "a", "--restarted-at", "2026-11-27T01:30:00Z"],
        "upgrade": ["--to-revision", "1-15-4"],
        "serve": [],
    }[command]
    parser = build_parser()
    assert settings_from_args(parser.parse_args([command, *extra])).rules.night_budget == 0.1
    args = parser.parse_args([command, *extra, "--night-budget", "0.05"])
    assert settings_from_args(args).rules.night_budget == 0.05


@pytest.mark.parametrize("value", ["0", "1", "5%", "-0.1"])
def test_a_night_budget_outside_zero_and_one_is_bad_input(value, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["analyze", "--namespace", "a", "--restarted-at", "2026-11-27T01:30:00Z",
              "--night-budget", value])  # fmt: skip
    assert exited.value.code == 2
    assert "--night-budget" in capsys.readouterr().err


def test_a_night_budget_outside_zero_and_one_in_the_environment_is_bad_input(monkeypatch):
    from analyzer.commands.common import settings_from_args
    from analyzer.errors import BadInputError

    monkeypatch.setenv("CANARY_RULES__NIGHT_BUDGET", "1.5")
    args = build_parser().parse_args(["upgrade", "--to-revision", "1-15-4"])
    with pytest.raises(BadInputError, match="CANARY_RULES__NIGHT_BUDGET"):
        settings_from_args(args)


@pytest.mark.parametrize("command", ["analyze", "upgrade", "status", "pause", "bench judge"])
def test_o_is_output_as_in_kubectl(command):
    extra = {"analyze": ["-n", "shop", "--restarted-at", "2026-01-01T00:00:00Z"],
             "upgrade": ["--to-revision", "1-15-4"]}.get(command, [])  # fmt: skip
    args = build_parser().parse_args([*command.split(), *extra, "-o", "yaml"])
    assert args.output == "yaml"
    if command == "analyze":
        assert args.namespace == "shop"
