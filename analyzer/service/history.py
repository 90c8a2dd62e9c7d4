"""The restart history file: append-only JSON lines (``core.restart_history``), written when
an upgrade restarts a namespace or shadow mode sees one restart, read by ``analyze --last``.

Why a file and not the state ConfigMap: the history grows with every night and is read by a
person's backtest, not by the control loop; a ConfigMap is limited to 1 MiB and rewritten
whole. One ``write`` of one line per record, opened in append mode, never rewrites what is
there. Writing never raises: a full disk costs history, not the upgrade.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from analyzer.core.restart_history import (
    HistoryLineError,
    RestartRecord,
    new_records,
    parse_line,
    upgrade_restarts,
)
from analyzer.core.shadow import SeenRestart
from analyzer.core.upgrade import UpgradeState

log = logging.getLogger("canary_analyzer.history")


class HistoryReadError(Exception):
    """The history file cannot be read, or a line of it is not a record."""


def read_history(path: Path) -> list[RestartRecord]:
    """Every record of the file, in order (a missing file: none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise HistoryReadError(f"cannot read {path}: {error.strerror or error}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(parse_line(line, number))
        except HistoryLineError as error:
            raise HistoryReadError(f"{path}: {error}") from None
    return records


class RestartHistory:
    """Appends records to the history file, each once (what the file holds is read first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: set[tuple[str, str, datetime, str | None]] | None = None

    def _known_keys(self) -> set[tuple[str, str, datetime, str | None]]:
        if self._known is None:
            try:
                self._known = {r.key for r in read_history(self.path)}
            except HistoryReadError as error:
                log.warning("restart history unreadable", extra={"fields": {"error": str(error)}})
                self._known = set()
        return self._known

    def append(self, records: list[RestartRecord]) -> None:
        fresh = new_records(self._known_keys(), records)
        if not fresh:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write("".join(r.model_dump_json() + "\n" for r in fresh))
        except OSError as error:
            log.warning(
                "cannot write the restart history",
                extra={"fields": {"path": str(self.path), "error": str(error)}},
            )

    def observe(self, state: UpgradeState) -> None:
        """An engine observer's share: the restarts and verdicts the state records."""
        self.append(upgrade_restarts(state))

    def append_seen(self, seen: SeenRestart, source: str) -> None:
        self.append([RestartRecord(event="restarted", source=source, namespace=seen.namespace,
                                   restarted_at=seen.restarted_at)])  # fmt: skip

    def append_verdict(self, seen: SeenRestart, verdict: str, reason: str, source: str) -> None:
        self.append([RestartRecord(event="judged", source=source, namespace=seen.namespace,
                                   restarted_at=seen.restarted_at, verdict=verdict,
                                   reason=reason)])  # fmt: skip


def history_path(history_file: Path | None, reports_dir: Path) -> Path:
    """The ``service.history_file`` setting, else ``restarts.jsonl`` beside the reports."""
    return history_file if history_file is not None else reports_dir.parent / "restarts.jsonl"
