"""Exceptions that cross layers, each mapped to one exit code of the command-line contract.

The contract (docs/cli.md): 0 success · 1 regression · 2 bad input or config · 3 inconclusive ·
4 data source or cluster unreachable · 70 internal error. Verdict exit codes (1, 3) come from
results, not exceptions; exceptions cover 2, 4 and 70.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes promised to users and their scripts."""

    OK = 0
    REGRESSION = 1
    BAD_INPUT = 2
    INCONCLUSIVE = 3
    UNREACHABLE = 4
    INTERNAL = 70


class CanaryAnalyzerError(Exception):
    """Base class of every error this product raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class BadInputError(CanaryAnalyzerError):
    """The user gave something unusable: a flag, a setting, a rule file, a name."""

    exit_code = ExitCode.BAD_INPUT


class UnreachableError(CanaryAnalyzerError):
    """A data source or the cluster could not be reached or answered with a server error."""

    exit_code = ExitCode.UNREACHABLE
