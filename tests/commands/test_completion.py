"""``canary-analyzer completion SHELL`` prints a script the shell accepts and that completes
the real commands and flags (bash runs it here: ``complete`` on ``sta`` and ``status --w``)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.commands.cli_run import run_cli


def test_bash_script_completes_commands_and_flags(tmp_path):
    done = run_cli("completion", "bash")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "canary-analyzer.bash"
    script.write_text(done.stdout)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(canary-analyzer request-u); COMP_CWORD=1; _shtab_canary_analyzer\n"
        'echo "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(canary-analyzer upgrade --cont); COMP_CWORD=2; _shtab_canary_analyzer\n"
        'echo "${COMPREPLY[@]}"\n'
    )
    answer = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split("\n")[:2] == ["request-upgrade", "--context"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed here")
def test_zsh_script_parses(tmp_path):
    done = run_cli("completion", "zsh")
    script = tmp_path / "_canary-analyzer"
    script.write_text(done.stdout)
    assert subprocess.run(["zsh", "-n", str(script)], timeout=30).returncode == 0


def test_an_unknown_shell_is_exit_2():
    done = run_cli("completion", "fish")
    assert done.returncode == 2 and "invalid choice: 'fish'" in done.stderr
