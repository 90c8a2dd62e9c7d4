"""The state of an upgrade: the plan, where it is, the pending action, and per namespace what
happened to it (its verdict and rule results, typed ``RuleResult``s); its summary; and the
one place it is serialised — the state ConfigMap's document, with a schema version, read
back whether this release or the one before it wrote it (docs/architecture.md, "From plan
to verdict to alert").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from analyzer.core.upgrade.plan import (
    NamespaceOutlook,
    Outcome,
    Stage,
    Step,
    Target,
    UpgradePlan,
    UpgradeStyle,
    _Frozen,
)
from analyzer.core.upgrade.steps import (
    Action,
)
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict

# -- state --------------------------------------------------------------------------------------


class NamespaceRecord(_Frozen):
    """What happened to one namespace (the ``namespaces`` items of the JSON summary)."""

    name: str
    state: str = "pending"  # pending|moving|judging|promoted|failed|inconclusive|rolled_back
    verdict: Verdict | None = None
    reason: str = ""
    rules: tuple[RuleResult, ...] = ()
    restarted_at: datetime | None = None  # when its wave's restart took effect
    #: which evidence judged it ("" before it was judged, or in a state saved before this
    #: was recorded: its own traffic, the only evidence then)
    evidence: str = ""

    def judged(self) -> NamespaceVerdict | None:
        """Its verdict with the rule results behind it (None: not judged yet)."""
        if self.verdict is None:
            return None
        return NamespaceVerdict(
            namespace=self.name,
            verdict=self.verdict,
            reason=self.reason or self.verdict.value,
            rules=self.rules,
        )


class Note(_Frozen):
    """A best-effort message: logged, and recorded as an Event on ``namespace`` if given."""

    message: str
    reason: str
    namespace: str | None = None
    warning: bool = False


class UpgradeState(_Frozen):
    plan: UpgradePlan
    stage: Stage
    step: Step
    pending: Action | None
    wave: int = 0
    restarted_at: datetime | None = None
    #: when the group's rollout completed and its proxies were verified: the after-window
    #: starts ``settle`` later (None: not yet, or a state saved before it was recorded)
    rolled_out_at: datetime | None = None
    deadline: datetime | None = None
    extensions: int = 0
    #: looks already taken at this group when the plan looks at every step
    steps_looked: int = 0
    moved: tuple[str, ...] = ()
    gateway_moved: bool = False
    #: rollback, tag style: reached workloads found on the new revision outside ``moved``
    rescheduled: tuple[Target, ...] = ()
    rollback_reason: str | None = None
    outcome: Outcome | None = None
    namespaces: tuple[NamespaceRecord, ...] = ()
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.pending is None

    def record(self, name: str) -> NamespaceRecord:
        return next(r for r in self.namespaces if r.name == name)


class Transition(_Frozen):
    state: UpgradeState
    notes: tuple[Note, ...] = ()


class UnexpectedResultError(ValueError):
    """The engine handed back a result that does not answer the pending action (a bug)."""


def _with_records(
    current: UpgradeState, names: Iterable[str], **changes: Any
) -> tuple[NamespaceRecord, ...]:
    chosen = set(names)
    return tuple(
        r.model_copy(update=changes) if r.name in chosen else r for r in current.namespaces
    )


def _set(state: UpgradeState, now: datetime, **changes: Any) -> UpgradeState:
    return state.model_copy(update={**changes, "updated_at": now})


class UpgradeSummary(_Frozen):
    """How an upgrade went, typed (``summary(state)`` is its JSON form, the command-line
    contract's ``outcome``, revisions, tag, style, id, reason and ``namespaces``)."""

    outcome: Outcome | None
    from_revision: str
    to_revision: str
    tag: str
    style: UpgradeStyle
    upgrade_id: str
    reason: str | None
    namespaces: tuple[NamespaceRecord, ...] = ()
    #: the forecast made before the night, per planned namespace (``UpgradePlan.forecast``)
    forecast: tuple[NamespaceOutlook, ...] = ()

    @classmethod
    def of(cls, state: UpgradeState) -> UpgradeSummary:
        plan = state.plan
        return cls(
            outcome=state.outcome,
            from_revision=plan.from_revision,
            to_revision=plan.to_revision,
            tag=plan.tag,
            style=plan.style,
            upgrade_id=plan.upgrade_id,
            reason=state.rollback_reason,
            namespaces=state.namespaces,
            forecast=plan.forecast,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary promised by the command-line contract (``forecast`` only when
        the plan holds one)."""
        document = {
            "outcome": self.outcome.value if self.outcome else None,
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "tag": self.tag,
            "style": self.style.value,
            "upgrade_id": self.upgrade_id,
            "reason": self.reason,
            "namespaces": [
                {"name": r.name, "state": r.state,
                 "verdict": r.verdict.value if r.verdict else None, "reason": r.reason,
                 "rules": [rule.to_dict() for rule in r.rules], "evidence": r.evidence or None}
                for r in self.namespaces
            ],
        }  # fmt: skip
        if self.forecast:
            document["forecast"] = [each.model_dump(mode="json") for each in self.forecast]
        return document


def summary(state: UpgradeState) -> dict[str, Any]:
    """The JSON summary promised by the command-line contract (``UpgradeSummary``'s)."""
    return UpgradeSummary.of(state).to_dict()


# -- the state ConfigMap: the one place the state is serialised ---------------------------------

#: The envelope's format (unchanged since the first release: ``{"format": 1, "state": ...}``).
STATE_FORMAT = 1
#: The state's schema. 1 (no ``schema_version``, releases before typed verdicts): rule results
#: stored as free dicts; 2: rule results stored as ``RuleResult`` fields. Both read the same
#: JSON (2 writes exactly the keys 1 wrote), so a state of either is read by this release.
STATE_SCHEMA_VERSION = 2


class StateSchemaError(ValueError):
    """A stored state this release cannot read (another format, a newer schema, bad fields)."""


def state_document(state: UpgradeState) -> dict[str, Any]:
    """The JSON document the state store keeps (the state ConfigMap's ``state`` key)."""
    return {
        "format": STATE_FORMAT,
        "schema_version": STATE_SCHEMA_VERSION,
        "state": state.model_dump(mode="json"),
    }


def state_from_document(document: Mapping[str, Any]) -> UpgradeState:
    """The state back from ``state_document``'s form, or from one an earlier release wrote."""
    if document.get("format") != STATE_FORMAT:
        raise StateSchemaError(f"state format {document.get('format')!r} is not supported")
    schema = document.get("schema_version", 1)
    if not isinstance(schema, int) or not 1 <= schema <= STATE_SCHEMA_VERSION:
        raise StateSchemaError(
            f"state schema {schema!r} is newer than this release reads ({STATE_SCHEMA_VERSION})"
        )
    try:
        return UpgradeState.model_validate(document["state"])
    except (KeyError, ValidationError) as error:
        raise StateSchemaError(f"state cannot be read: {error}") from None
