"""docs/cli.md lists exactly the flags the command line has, command by command.

The parser (``analyzer.cli.build_parser()``) is the truth: for every command and nested
verb (``rules lint``, ``bench judge``) the set of ``--flags`` must equal the flags in the
first column of that command's table in docs/cli.md, both ways. The real ``--help`` of each
command is also run once through the parser, so a parser that cannot print help fails too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re

import pytest

from analyzer.cli import build_parser
from tests.docs.blocks import ROOT

CLI_DOC = ROOT / "docs" / "cli.md"
_HEADING = re.compile(r"^###\s+`canary-analyzer(?P<command>(?: [a-z-]+)*)`\s*$")
_ROW_FLAGS = re.compile(r"`(--[a-z][a-z0-9-]*)")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parser_flags() -> dict[str, set[str]]:
    """Command path ("" for the top level, "rules lint", …) → its long flags (no --help)."""
    found: dict[str, set[str]] = {}

    def walk(path: str, parser: argparse.ArgumentParser) -> None:
        found[path] = {
            option
            for action in parser._actions
            for option in action.option_strings
            if option.startswith("--") and option != "--help"
        }
        for name, child in _subparsers(parser).items():
            walk(f"{path} {name}".strip(), child)

    walk("", build_parser())
    return found


def documented_flags() -> dict[str, set[str]]:
    """Command path → flags named in the first column of its table in docs/cli.md."""
    documented: dict[str, set[str]] = {}
    current: str | None = None
    for line in CLI_DOC.read_text().splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group("command").strip()
            documented[current] = set()
            continue
        if line.startswith("#"):
            current = None
            continue
        if current is not None and line.startswith("|"):
            first_cell = line.strip("|").split("|")[0]
            documented[current].update(_ROW_FLAGS.findall(first_cell))
    return documented


PARSED = parser_flags()


def test_every_command_is_documented_and_nothing_else() -> None:
    documented = documented_flags()
    assert set(documented) == set(PARSED), (
        f"commands missing from docs/cli.md: {sorted(set(PARSED) - set(documented))}; "
        f"documented but not in the parser: {sorted(set(documented) - set(PARSED))}"
    )


@pytest.mark.parametrize("command", sorted(PARSED), ids=lambda c: c or "canary-analyzer")
def test_flags_match_both_ways(command: str) -> None:
    documented = documented_flags().get(command, set())
    actual = PARSED[command]
    assert documented == actual, (
        f"`canary-analyzer {command}`: undocumented flags {sorted(actual - documented)}; "
        f"documented but not accepted {sorted(documented - actual)}"
    )


@pytest.mark.parametrize("command", sorted(PARSED), ids=lambda c: c or "canary-analyzer")
def test_help_prints_every_flag(command: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command.split(), "--help"])
    assert exited.value.code == 0
    for flag in PARSED[command]:
        assert flag in out.getvalue(), f"{flag} missing from `{command} --help`"
