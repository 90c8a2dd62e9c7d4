"""Rules hot reload: a changed rules directory is linted; invalid → keep the last good set.

The service checks the directory on a schedule (mounted ConfigMaps change by symlink swap,
so the content fingerprint is what counts, not inotify events). A valid change is used from
the next analysis; an invalid one is logged, alerted once, and resolved when fixed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from analyzer.adapters.rule_files import load_rules, rule_file_paths
from analyzer.core.rules import RuleFileError, RuleProblem, RuleSet

log = logging.getLogger("canary_analyzer.rules")


def fingerprint(directory: Path) -> str:
    """A hash of every rule file's name and content under ``directory``."""
    digest = hashlib.sha256()
    files, _ = rule_file_paths([directory])
    for file in files:
        digest.update(str(file.name).encode())
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


class RulesWatcher:
    """Holds the rules in force; ``check()`` reloads them when the directory changed."""

    def __init__(
        self,
        directory: Path,
        on_invalid: Callable[[list[RuleProblem], RuleSet], None] | None = None,
        on_valid: Callable[[RuleSet], None] | None = None,
    ):
        self.directory = directory
        self.on_invalid = on_invalid
        self.on_valid = on_valid
        self._lock = threading.Lock()
        self._rules = load_rules([directory])  # the first load must be valid (exit 2 if not)
        self._fingerprint = fingerprint(directory)
        self._rejected: str | None = None
        self.reloads = 0

    @property
    def rules(self) -> RuleSet:
        with self._lock:
            return self._rules

    @property
    def invalid(self) -> bool:
        return self._rejected is not None

    def check(self) -> bool:
        """Reload when changed; returns True when a new valid set is now in force."""
        current = fingerprint(self.directory)
        if current == self._fingerprint:
            if self._rejected is not None:  # the bad change was reverted
                self._rejected = None
                log.info("rules valid again (reverted to the set in force)")
                if self.on_valid is not None:
                    self.on_valid(self.rules)
            return False
        if current == self._rejected:
            return False
        try:
            rules = load_rules([self.directory])
        except RuleFileError as error:
            self._rejected = current
            log.error(
                "rules changed but are invalid; keeping the last good set",
                extra={
                    "fields": {
                        "problems": [str(p) for p in error.problems],
                        "kept": self.rules.names(),
                    }
                },
            )
            if self.on_invalid is not None:
                self.on_invalid(list(error.problems), self.rules)
            return False
        with self._lock:
            self._rules = rules
            self._fingerprint = current
        was_rejected, self._rejected = self._rejected, None
        self.reloads += 1
        log.info(
            "rules reloaded",
            extra={"fields": {"rules": rules.names(), "after_invalid": bool(was_rejected)}},
        )
        if self.on_valid is not None:
            self.on_valid(rules)
        return True
