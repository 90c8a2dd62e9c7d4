"""Rules hot reload: valid changes take effect, invalid ones keep the last good set."""

import shutil
from pathlib import Path

from analyzer.service.rules_reload import RulesWatcher


def make_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree("rules", directory)
    return directory


def test_valid_change_is_used_and_invalid_change_keeps_last_good(tmp_path):
    directory = make_dir(tmp_path)
    invalid_calls, valid_calls = [], []
    watcher = RulesWatcher(
        directory,
        on_invalid=lambda problems, kept: invalid_calls.append((problems, kept.names())),
        on_valid=lambda rules: valid_calls.append(rules.names()),
    )
    assert "latency-p50" in watcher.rules.names()
    assert watcher.check() is False  # unchanged

    (directory / "latency-p50.yaml").unlink()
    assert watcher.check() is True
    assert "latency-p50" not in watcher.rules.names()
    assert valid_calls == [watcher.rules.names()]

    (directory / "broken.yaml").write_text(
        "apiVersion: canary-analyzer/v1\nkind: Rule\nmetadata: {name: x}\nspec: {type: nope}\n"
    )
    assert watcher.check() is False
    assert watcher.invalid
    (problems, kept) = invalid_calls[0]
    assert any(str(p).startswith(f"{directory / 'broken.yaml'}:4:") for p in problems)
    assert "latency-p50" not in kept and "error-rate" in watcher.rules.names()
    assert watcher.check() is False and len(invalid_calls) == 1  # alerted once per bad content

    (directory / "broken.yaml").unlink()
    assert watcher.check() is False  # back to the content already in force
    assert not watcher.invalid and len(valid_calls) == 2  # the invalid alert can resolve
    (directory / "extra.yaml").write_text(
        (directory / "error-rate.yaml")
        .read_text()
        .replace("name: error-rate", "name: error-rate-2")
    )
    assert watcher.check() is True
    assert "error-rate-2" in watcher.rules.names()
