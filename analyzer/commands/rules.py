"""The ``rules`` subcommand, for rule authors: ``rules lint [PATH…]`` validates rule files
(PromQL parsed, namespace label kept, suspicious settings warned about), ``rules test
FILE…`` runs rule unit tests without Prometheus, ``rules schema`` prints the rule files'
JSON Schema for editors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analyzer.errors import ExitCode


def register(subparsers) -> None:
    parser = subparsers.add_parser("rules", help="work with rule files (lint, test, schema)")
    verbs = parser.add_subparsers(dest="rules_command", metavar="VERB")
    lint = verbs.add_parser(
        "lint",
        help="validate rule files and directories",
        description="Validate rule files: the format, the PromQL of every query (parsed; the "
        "namespace label kept in its result, and le for histograms) and suspicious settings. "
        "Exit 0 when valid; exit 2 printing file:line: message for each problem. Warnings "
        "(file:line: warning: …, on stderr) keep exit 0 unless --strict: no allowance, a "
        "confidence below 0.9, a pass confidence above the confidence, a range window shorter "
        "than 4 times the scrape interval (rules.scrape_interval; [{{ step }}] counts as "
        "windows.step).",
    )
    lint.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="rule files or directories (default: the configured rules directory)",
    )
    lint.add_argument(
        "--strict", action="store_true", help="warnings are problems too: exit 2 on any warning"
    )
    lint.set_defaults(handler=lint_command)
    test = verbs.add_parser(
        "test",
        help="run rule unit tests (inline series, expected verdicts) without Prometheus",
        description="Run rule unit tests: each test writes what the rules' queries answer per "
        "namespace and step (promtool's expanding notation, e.g. 1000x21, 2x9 _x2 40x9) and the "
        "verdict expected per namespace and rule. Exit 0 all passed, 1 a test failed (a diff "
        "of expected and actual verdicts is printed), 2 a bad test file or rule file.",
    )
    test.add_argument("files", nargs="+", type=Path, metavar="FILE", help="rule test files")
    test.set_defaults(handler=test_command)
    schema = verbs.add_parser(
        "schema",
        help="print the JSON Schema of rule files (for editors)",
        description="Print the JSON Schema of a rule document, generated from the models "
        "(the same as rules/rule-file.schema.json). Editors with the YAML language server "
        "validate a rule file against it with the first line "
        "'# yaml-language-server: $schema=rule-file.schema.json'.",
    )
    schema.set_defaults(handler=schema_command)
    parser.set_defaults(handler=lambda args: (parser.print_help(), ExitCode.BAD_INPUT)[1])


def lint_command(args: argparse.Namespace) -> int:
    from analyzer.adapters.rule_files import default_rules_path, load_rules
    from analyzer.core.rate_windows import short_windows
    from analyzer.core.rule_lint import lint_rules
    from analyzer.core.rules import RuleFileError
    from analyzer.settings import load_settings

    settings = load_settings()  # a misspelt CANARY_* variable is bad input, named
    paths = args.paths or [default_rules_path(settings.rules.directory)]
    try:
        rule_set = load_rules(paths)
    except RuleFileError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"{len(error.problems)} problem(s) found", file=sys.stderr)
        return ExitCode.BAD_INPUT
    findings = lint_rules(rule_set, settings.rules.namespace_label, settings.windows.step)
    errors = [str(f) for f in findings if not f.warning]
    warnings = [str(f) for f in findings if f.warning]
    warnings += [
        str(w)
        for w in short_windows(rule_set, settings.windows.step, settings.rules.scrape_interval)
    ]
    for line in errors + warnings:
        print(line, file=sys.stderr)
    if errors or (warnings and args.strict):
        counted = len(errors) + (len(warnings) if args.strict else 0)
        print(
            f"{counted} problem(s) found"
            + (" (--strict: warnings count)" if args.strict and warnings else ""),
            file=sys.stderr,
        )
        return ExitCode.BAD_INPUT
    sources = sorted({loaded.source for loaded in rule_set.rules})
    suffix = f", {len(warnings)} warning(s)" if warnings else ""
    print(
        f"{len(rule_set)} rules valid in {len(sources)} file(s): {', '.join(rule_set.names())}"
        f"{suffix}"
    )
    return ExitCode.OK


def test_command(args: argparse.Namespace) -> int:
    from analyzer.commands._rule_tests import run_test_files
    from analyzer.settings import load_settings

    return run_test_files(list(args.files), load_settings().rules.namespace_label)


def schema_command(args: argparse.Namespace) -> int:
    from analyzer.core.rules import rule_file_schema

    print(json.dumps(rule_file_schema(), indent=2, ensure_ascii=False))
    return ExitCode.OK
