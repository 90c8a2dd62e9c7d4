"""Bad settings are bad input (exit 2) with a message naming the variable, never exit 70.

pydantic-settings ignores a ``CANARY_*`` variable it does not know and reports a list that
is not JSON as a parse error of the whole group; the product names the culprit instead.
"""

from __future__ import annotations

import pytest

from analyzer.errors import BadInputError
from analyzer.settings import check_environment, load_settings
from tests.commands.cli_run import EMPTY_PROMQL_ANSWER, run_cli
from tests.fixtures.canned_http import canned_server

ANALYZE = ["analyze", "--namespace", "shop", "--restarted-at", "2026-03-02T01:30:00Z"]
UPGRADE = ["upgrade", "--to-revision", "1-15-4"]


@pytest.mark.parametrize("command", [ANALYZE, UPGRADE], ids=["analyze", "upgrade"])
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CANARY_UPGRADE__WAVES", "1,2,4", "CANARY_UPGRADE__WAVES='1,2,4': not JSON"),
        ("CANARY_UPGRADE__WAVEZ", "[1]", "CANARY_UPGRADE__WAVEZ: unknown setting (did you mean "
         "CANARY_UPGRADE__WAVES?)"),
        ("CANARY_PROMETHEUS_URL", "http://x", "did you mean CANARY_PROMETHEUS__URL?"),
        ("CANARY_WINDOWS__AFTER", "ten", "CANARY_WINDOWS__AFTER: "),
        ("CANARY_UPGRADE__WAVES", '["a"]', "CANARY_UPGRADE__WAVES (item 0)"),
    ],
)  # fmt: skip
def test_a_bad_variable_exits_2_naming_it(command, variable, value, expected):
    done = run_cli(*command, env={variable: value})
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "internal error" not in done.stderr


def test_a_misspelt_key_inside_a_json_group_is_named(monkeypatch):
    monkeypatch.setenv("CANARY_UPGRADE", '{"wavez": [1]}')
    with pytest.raises(BadInputError, match=r"CANARY_UPGRADE__WAVEZ: unknown setting"):
        load_settings()


def test_the_service_url_variable_of_the_control_verbs_is_not_a_misspelling(monkeypatch):
    check_environment({"CANARY_SERVICE__URL": "http://127.0.0.1:8080", "OTHER": "x"})
    monkeypatch.setenv("CANARY_SERVICE__URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("CANARY_SERVICE__TICK_INTERVAL", "7s")
    assert load_settings().service.tick_interval.total_seconds() == 7


def test_good_variables_still_apply(monkeypatch):
    monkeypatch.setenv("CANARY_UPGRADE__WAVES", "[1, 3]")
    monkeypatch.setenv("CANARY_WINDOWS__AFTER", "1h30m")
    settings = load_settings()
    assert settings.upgrade.waves == [1, 3]
    assert settings.windows.after.total_seconds() == 5400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: v1\nclusters: [\n", ":3 is not valid YAML"),
        ("- just\n- a list\n", "is not usable"),
    ],
)
def test_a_malformed_kubeconfig_exits_2_naming_the_file(tmp_path, text, expected):
    kubeconfig = tmp_path / "broken-kubeconfig"
    kubeconfig.write_text(text)
    with canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus:
        done = run_cli(
            *UPGRADE, "--kubeconfig", str(kubeconfig), "--prometheus-url", prometheus
        )
    assert done.returncode == 2, done.stderr
    assert f"kubeconfig {kubeconfig}" in done.stderr and expected in done.stderr


def test_a_missing_kubeconfig_exits_2_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere"
    with canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus:
        done = run_cli(*UPGRADE, "--kubeconfig", str(missing), "--prometheus-url", prometheus)
    assert done.returncode == 2, done.stderr
    assert str(missing) in done.stderr


@pytest.mark.parametrize(
    "command", [["rules", "lint", "rules/"], ["rules", "test", "rules/tests"]], ids=["lint", "test"]
)
def test_rules_commands_name_a_misspelt_variable(command):
    """``rules lint`` and ``rules test`` read the settings (the namespace label, the step)
    through the same loader as the other commands: a misspelt variable is exit 2, named."""
    done = run_cli(*command, env={"CANARY_RULES__NAMESPACE_LABLE": "ns"})
    assert done.returncode == 2, done.stderr
    assert "CANARY_RULES__NAMESPACE_LABLE: unknown setting (did you mean " in done.stderr
    assert "CANARY_RULES__NAMESPACE_LABEL?)" in done.stderr
