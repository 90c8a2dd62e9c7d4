"""Faults a scenario (or a test, at run time) injects: pods that never become ready, API
errors at the N-th matching request or in a burst, and slow API responses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from analyzer.sim.scenario import ApiErrorFault, FaultsSpec, NeverReadyFault, SlowResponseFault


@dataclass
class _Counted:
    rule: ApiErrorFault | SlowResponseFault
    seen: int = 0

    def hit(self, method: str, path: str) -> bool:
        """Count a matching request; True when it falls in the rule's window."""
        if method.upper() not in (m.upper() for m in self.rule.methods):
            return False
        if self.rule.path_contains and self.rule.path_contains not in path:
            return False
        self.seen += 1
        start = self.rule.at_request
        count = self.rule.count
        return self.seen >= start and (count is None or self.seen < start + count)


@dataclass(frozen=True)
class RequestFault:
    """What to do to one API request."""

    delay_seconds: float = 0.0
    status: int | None = None


class FaultState:
    """The faults in force; changed at run time through ``SimulatedMesh.set_fault``."""

    def __init__(self, spec: FaultsSpec) -> None:
        self._lock = threading.Lock()
        self._never_ready: list[NeverReadyFault] = list(spec.never_ready)
        self._errors = [_Counted(rule) for rule in spec.api_errors]
        self._slow = [_Counted(rule) for rule in spec.slow_responses]

    def add(self, fault: NeverReadyFault | ApiErrorFault | SlowResponseFault) -> None:
        with self._lock:
            if isinstance(fault, NeverReadyFault):
                self._never_ready.append(fault)
            elif isinstance(fault, ApiErrorFault):
                self._errors.append(_Counted(fault))
            elif isinstance(fault, SlowResponseFault):
                self._slow.append(_Counted(fault))
            else:
                raise TypeError(f"not a fault: {fault!r}")

    def clear(self) -> None:
        with self._lock:
            self._never_ready.clear()
            self._errors.clear()
            self._slow.clear()

    def never_ready(self, namespace: str, workload: str | None, revision: str | None) -> bool:
        with self._lock:
            return any(
                (fault.namespace is None or fault.namespace == namespace)
                and (fault.workload is None or fault.workload == workload)
                and (fault.revision is None or fault.revision == revision)
                for fault in self._never_ready
            )

    def could_hold(self, namespace: str, workload: str) -> bool:
        """Whether some never-ready fault may hold pods of this workload (any revision)."""
        with self._lock:
            return any((fault.namespace is None or fault.namespace == namespace)
                       and (fault.workload is None or fault.workload == workload)
                       for fault in self._never_ready)

    def for_request(self, method: str, path: str) -> RequestFault:
        with self._lock:
            delay = sum(rule.rule.delay.total_seconds()  # type: ignore[union-attr]
                        for rule in self._slow if rule.hit(method, path))
            status = None
            for rule in self._errors:
                if rule.hit(method, path) and status is None:
                    status = rule.rule.status  # type: ignore[union-attr]
            return RequestFault(delay, status)
