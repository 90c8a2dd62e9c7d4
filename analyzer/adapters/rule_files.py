"""Finds and reads rule files from disk, then hands their text to the pure rule parser.

Where rules come from when none are named: the configured directory, else ``./rules`` when
present, else the defaults shipped inside the package.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analyzer.core.rules import RuleFileError, RuleProblem, RuleSet, build_rule_set

PACKAGED_RULES = Path(__file__).resolve().parent.parent / "default_rules"
RULE_SUFFIXES = (".yaml", ".yml")


def default_rules_path(configured: Path | None = None) -> Path:
    """The rules directory in force when the user named none."""
    if configured is not None:
        return configured
    local = Path.cwd() / "rules"
    if local.is_dir():
        return local
    return PACKAGED_RULES


def rule_file_paths(paths: Iterable[Path]) -> tuple[list[Path], list[RuleProblem]]:
    """Expand files and directories (non-recursive, sorted) into rule files."""
    files: list[Path] = []
    problems: list[RuleProblem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
            if not found:
                problems.append(RuleProblem(str(path), 0, "no rule files (*.yaml, *.yml) here"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(RuleProblem(str(path), 0, "no such file or directory"))
    return files, problems


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Read and validate every rule file under ``paths``; raise ``RuleFileError`` listing
    each problem with file and line."""
    files, problems = rule_file_paths(paths)
    texts = []
    for file in files:
        try:
            texts.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(RuleProblem(str(file), 0, f"cannot read: {error}"))
    try:
        rule_set = build_rule_set(texts)
    except RuleFileError as error:
        problems.extend(error.problems)
        raise RuleFileError(problems) from None
    if problems:
        raise RuleFileError(problems)
    return rule_set
