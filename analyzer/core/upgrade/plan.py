"""The upgrade's plan, fixed when it starts, and its vocabulary: how namespaces move (style),
what thin evidence leads to, how an upgrade ends, its stages and steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

REVISION_LABEL = "istio.io/rev"


class UpgradeStyle(StrEnum):
    """How namespaces move to the new revision (docs/architecture.md, "The upgrade, and the two ways to move namespaces")."""

    TAG = "tag"
    NAMESPACE_LABEL = "namespace-label"


class InconclusivePolicy(StrEnum):
    """What to do when the evidence stays too thin after every allowed extension."""

    HOLD = "hold"
    ROLLBACK = "rollback"


class LookPolicy(StrEnum):
    """When a wave is judged: once at the end of the after-window (and of each extension),
    or at every step of it with anytime-valid bounds (``core/sequential.py``), stopping as
    soon as the answer is certain either way."""

    FIXED = "fixed"
    EVERY_STEP = "every-step"


class Outcome(StrEnum):
    """How an upgrade ended (the ``outcome`` of the JSON summary)."""

    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    HELD = "held"
    FAILED = "failed"


class Stage(StrEnum):
    MOVE_TAG = "move-tag"
    GATEWAY = "gateway"
    WAVE = "wave"
    FINALIZE = "finalize"
    ROLLBACK = "rollback"
    FINISHED = "finished"


class Step(StrEnum):
    MOVE_TAG = "move-tag"
    RELABEL = "relabel"
    RESTART = "restart"
    ROLLOUT = "rollout"
    VERIFY = "verify"
    FIND_MOVED = "find-moved"
    WAIT = "wait"
    JUDGE = "judge"
    NOTIFY = "notify"
    NONE = "none"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """What to restart: a whole namespace (kind/name None) or one workload."""

    namespace: str
    kind: str | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.kind is None:
            return f"namespace {self.namespace}"
        return f"{self.kind} {self.namespace}/{self.name}"


class RuleOutlook(_Frozen):
    """One rule's forecast on a planned namespace: the smallest regression it detects in
    the window (percentage points for a ratio rule, a share otherwise; None: it cannot
    judge the namespace alone) and that in words."""

    rule: str
    detectable: float | None = None
    text: str = ""


class NamespaceOutlook(_Frozen):
    """A planned namespace's forecast as the plan keeps it, made before the night from its
    traffic in the same hours of previous nights (``core.forecast.NamespaceForecast``,
    whose JSON form this is, with the rate added): what its rules can see and the policy
    that will judge it (``own``, or the rules' quiet policies)."""

    namespace: str
    requests_per_window: float
    #: the same traffic per second (None: the window was not known)
    requests_per_second: float | None = None
    quiet: bool = False
    policy: str = "own"
    rules: tuple[RuleOutlook, ...] = ()

    def describe(self) -> str:
        """One line: the timeline's note on a quiet namespace, the page's and report's row."""
        judged = (
            "judged on its own traffic"
            if not self.quiet
            else f"too quiet alone: judged by quiet policy {self.policy}"
        )
        details = "; ".join(f"{r.rule} {r.text}" for r in self.rules)
        return (
            f"{self.namespace}: ~{self.requests_per_window:.0f} requests per window in the "
            f"same hours before, {judged} ({details})"
        )


class UpgradePlan(_Frozen):
    """Everything fixed when an upgrade starts; stored inside the state."""

    upgrade_id: str
    tag: str
    from_revision: str
    to_revision: str
    style: UpgradeStyle = UpgradeStyle.TAG
    gateways: tuple[Target, ...] = ()
    waves: tuple[tuple[str, ...], ...]
    before: timedelta
    settle: timedelta
    after: timedelta
    step: timedelta
    evaluation_delay: timedelta = timedelta(0)
    rollout_timeout: timedelta
    poll_interval: timedelta
    max_extensions: int = 2
    on_inconclusive: InconclusivePolicy = InconclusivePolicy.HOLD
    looks: LookPolicy = LookPolicy.FIXED
    #: namespaces the tag reaches only through pod labels restart only these workloads
    #: (every other planned namespace restarts whole)
    workloads: tuple[Target, ...] = ()
    #: per planned namespace, in plan order: the forecast made before the night (empty:
    #: none could be made, or a state of an earlier release)
    forecast: tuple[NamespaceOutlook, ...] = ()

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(n for wave in self.waves for n in wave)

    @property
    def gateway_namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.namespace for g in self.gateways))

    def identity(self, link: str | None = None) -> UpgradeIdentity:
        """Which upgrade this is, as alerts name it (``link``: where its report is)."""
        return UpgradeIdentity(
            from_revision=self.from_revision,
            to_revision=self.to_revision,
            tag=self.tag,
            upgrade_id=self.upgrade_id,
            link=link,
        )


@dataclass(frozen=True)
class UpgradeIdentity:
    """What names an upgrade in every alert about it: the revisions it moves between, the
    tag it moves, its id and the link to its report. Alert builders take this one object
    instead of its fields."""

    from_revision: str
    to_revision: str
    tag: str
    upgrade_id: str | None = None
    link: str | None = None


def split_waves(namespaces: Sequence[str], sizes: Sequence[int]) -> tuple[tuple[str, ...], ...]:
    """Cut namespaces (in order) into waves of ``sizes``; after the last size, keep doubling.

    ``split_waves([a..g], [1, 2])`` → ``(a,) (b, c) (d, e, f, g)``."""
    if not sizes or any(size < 1 for size in sizes):
        raise ValueError(f"wave sizes must be positive integers, got {list(sizes)}")
    waves: list[tuple[str, ...]] = []
    index, position = 0, 0
    size = sizes[0]
    while position < len(namespaces):
        size = sizes[index] if index < len(sizes) else size * 2
        waves.append(tuple(namespaces[position : position + size]))
        position += size
        index += 1
    return tuple(waves)
