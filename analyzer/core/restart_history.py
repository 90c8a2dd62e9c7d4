"""The restart history's records: one JSON line per namespace restart (made by an upgrade or
seen in shadow mode) and one per verdict, so ``analyze --last N`` can backtest a rule over
the restarts the product has really made or seen.

Why it exists: the state ConfigMap keeps one upgrade (the current or last) and the HTML
reports are for people; nothing else records, machine-readably, when each namespace was
restarted. The schema (``RestartRecord``, ``SCHEMA_VERSION``) is a promise like the CLI's:
fields are added, never renamed. Pure: the file lives in ``service.history``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from analyzer.core.upgrade import UpgradeState

SCHEMA_VERSION = 1


class RestartRecord(BaseModel):
    """One line of the history. ``event``: ``restarted`` (when the restart took effect) or
    ``judged`` (its verdict); ``source``: ``upgrade`` (the engine restarted it, with the
    upgrade's id) or ``shadow`` (it restarted on its own; shadow mode saw it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    event: Literal["restarted", "judged"]
    source: Literal["upgrade", "shadow"]
    namespace: str
    restarted_at: datetime
    upgrade_id: str | None = None
    verdict: str | None = None
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str, datetime, str | None]:
        return (self.event, self.namespace, self.restarted_at, self.upgrade_id)


class HistoryLineError(ValueError):
    """A history line that is not a record (its line number and what is wrong)."""


def parse_line(text: str, number: int) -> RestartRecord:
    try:
        return RestartRecord.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in error.errors()
        )
        raise HistoryLineError(f"line {number}: {problems}") from None


def upgrade_restarts(state: UpgradeState) -> list[RestartRecord]:
    """The restarts an upgrade's state records (one per namespace with ``restarted_at``),
    and the verdicts of those judged."""
    records = []
    for record in state.namespaces:
        if record.restarted_at is None:
            continue
        common = {
            "source": "upgrade",
            "namespace": record.name,
            "restarted_at": record.restarted_at,
            "upgrade_id": state.plan.upgrade_id,
        }
        records.append(RestartRecord(event="restarted", **common))
        if record.verdict is not None:
            records.append(
                RestartRecord(
                    event="judged", verdict=record.verdict.value, reason=record.reason, **common
                )
            )
    return records


def new_records(
    known: set[tuple[str, str, datetime, str | None]], records: Iterable[RestartRecord]
) -> list[RestartRecord]:
    """The records not yet written (by key), in order; ``known`` is updated."""
    fresh = []
    for record in records:
        if record.key not in known:
            known.add(record.key)
            fresh.append(record)
    return fresh


def last_restarts(
    records: Sequence[RestartRecord], namespace: str, count: int, now: datetime
) -> list[datetime]:
    """The restart times of ``namespace``'s last ``count`` recorded restarts (upgrade or
    shadow), oldest first, each once, none in the future."""
    times = sorted(
        {r.restarted_at for r in records
         if r.event == "restarted" and r.namespace == namespace and r.restarted_at <= now}
    )  # fmt: skip
    return times[-count:] if count > 0 else []
