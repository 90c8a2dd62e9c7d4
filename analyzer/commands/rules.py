"""The ``rules`` subcommand: ``rules lint [PATH…]`` validates rule files for rule authors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analyzer.adapters.rule_files import default_rules_path, load_rules
from analyzer.core.rate_windows import short_windows
from analyzer.core.rules import RuleFileError
from analyzer.errors import ExitCode
from analyzer.settings import Settings


def register(subparsers) -> None:
    parser = subparsers.add_parser("rules", help="work with rule files (lint)")
    verbs = parser.add_subparsers(dest="rules_command", metavar="VERB")
    lint = verbs.add_parser(
        "lint",
        help="validate rule files and directories",
        description="Validate rule files. Exit 0 when valid; exit 2 printing file:line: message "
        "for each problem. Warns (exit 0) when a rule's range window is shorter than 4 times "
        "the scrape interval (rules.scrape_interval; [{{ step }}] counts as windows.step).",
    )
    lint.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="rule files or directories (default: the configured rules directory)",
    )
    lint.set_defaults(handler=lint_command)
    parser.set_defaults(handler=lambda args: (parser.print_help(), ExitCode.BAD_INPUT)[1])


def lint_command(args: argparse.Namespace) -> int:
    settings = Settings()
    paths = args.paths or [default_rules_path(settings.rules.directory)]
    try:
        rule_set = load_rules(paths)
    except RuleFileError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"{len(error.problems)} problem(s) found", file=sys.stderr)
        return ExitCode.BAD_INPUT
    for warning in short_windows(rule_set, settings.windows.step, settings.rules.scrape_interval):
        print(warning, file=sys.stderr)
    sources = sorted({loaded.source for loaded in rule_set.rules})
    print(f"{len(rule_set)} rules valid in {len(sources)} file(s): {', '.join(rule_set.names())}")
    return ExitCode.OK
