"""``rules test FILE…``: run rule unit tests (``core.rule_tests``) through the real analysis.

Each test's inline series answer the rules' rendered queries (``InlineSeries``), and
``analyze_restart`` — the code ``analyze`` and the engine use — judges them, so a test
sees exactly the verdicts a real restart with those query answers would get. Exit 0 when
every test passes, 1 when one fails (a diff of expected and actual verdicts is printed),
2 when a test file or its rule files are invalid.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from analyzer.adapters.rule_files import load_rules
from analyzer.core.rule_tests import (
    RuleTestFile,
    check_test,
    expectation_diff,
    inline_source,
    line_of_test,
    parse_test_text,
    restart_time,
)
from analyzer.core.rules import RuleFileError, RuleProblem
from analyzer.core.windows import RestartWindows, WindowError
from analyzer.errors import ExitCode
from analyzer.service.analysis import AnalysisRequest, analyze_restart


def run_test_files(paths: list[Path], namespace_label: str) -> int:
    """Run every test of every file; print one line per test and a diff per failure."""
    problems: list[RuleProblem] = []
    loaded = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(RuleProblem(str(path), 0, f"cannot read: {error}"))
            continue
        model, found, document = parse_test_text(text, str(path))
        problems.extend(found)
        if model is None:
            continue
        try:
            rules = load_rules([path.parent / name for name in model.rule_files])
        except RuleFileError as error:
            problems.extend(error.problems)
            continue
        for index, test in enumerate(model.tests):
            line = line_of_test(document, index)
            problems.extend(
                RuleProblem(str(path), line, f"test {test.name!r}: {message}")
                for message in check_test(test, rules)
            )
        loaded.append((path, model, document, rules))
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return ExitCode.BAD_INPUT
    passed = failed = 0
    for path, model, document, rules in loaded:
        for index, test in enumerate(model.tests):
            where = f"{path}:{line_of_test(document, index)}"
            diff = _run_one(model, index, rules, namespace_label)
            if isinstance(diff, str):
                print(f"{where}: test {test.name!r}: {diff}", file=sys.stderr)
                return ExitCode.BAD_INPUT
            if diff:
                failed += 1
                print(f"FAIL {where}: {test.name}")
                print("    verdicts differ (- expected, + got):")
                for line in diff:
                    print(f"  {line}")
            else:
                passed += 1
                print(f"ok   {where}: {test.name}")
    print(f"{passed} passed, {failed} failed")
    return ExitCode.REGRESSION if failed else ExitCode.OK


def _run_one(model: RuleTestFile, index: int, rules, namespace_label: str) -> list[str] | str:
    """The diff lines of one test (empty: it passed), or a message when it cannot run."""
    test = model.tests[index]
    lengths = model.windows
    try:
        windows = RestartWindows.around(
            restart_time(test, lengths), before=lengths.before, settle=lengths.settle,
            after=lengths.after, step=model.interval,
        )  # fmt: skip
    except WindowError as error:
        return str(error)
    source = inline_source(test, rules, namespace_label, model.interval)
    analysis_log = logging.getLogger("canary_analyzer.analysis")
    level = analysis_log.level
    if not analysis_log.isEnabledFor(logging.DEBUG):
        analysis_log.setLevel(logging.WARNING)  # one line per test says it all
    try:
        outcome = analyze_restart(
            source,
            rules,
            AnalysisRequest(
                judged=tuple(test.restarted),
                controls=tuple(test.controls),
                windows=windows,
                namespace_label=namespace_label,
            ),
        )
    finally:
        analysis_log.setLevel(level)
    got = {
        namespace: (
            verdict.verdict.value,
            verdict.reason,
            {r.rule: (r.verdict.value, r.reason) for r in verdict.rules},
        )
        for namespace, verdict in outcome.verdicts.items()
    }
    return expectation_diff(test.expect, got)
