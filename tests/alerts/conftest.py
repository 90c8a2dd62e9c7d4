"""Shared pieces for the alert tests: a webhook receiver, a real Alertmanager routing to it,
and a failing verdict with known numbers (error rate 1.00% → 5.00% in a canary)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict
from tests.fixtures.alertmanager_server import AlertmanagerServer, start_alertmanager
from tests.fixtures.webhook_receiver import WebhookReceiver

NOW = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
AM_PATH = "/alertmanager"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alertmanager(
    receiver: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AlertmanagerServer]:
    work_dir: Path = tmp_path_factory.mktemp("alertmanager")
    server = start_alertmanager(work_dir, receiver.url + AM_PATH)
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A namespace name no other test uses, so tests sharing one Alertmanager stay apart."""
    return f"shop-{next(_names)}"


def failing_verdict(namespace: str) -> NamespaceVerdict:
    error_rate = RuleResult(
        rule="error-rate",
        namespace=namespace,
        verdict=Verdict.FAIL,
        reason="regression: 1.00% → 5.00% (change net of controls +3.95 pp, allowed 0.50 pp, p=1e-12)",
        before=0.01,
        after=0.05,
        controls={
            "namespaces": ["cart", "search"],
            "before": 0.0102,
            "after": 0.0107,
            "change": 0.0005,
        },
        evidence={
            "before_requests": 12000,
            "after_requests": 11800,
            "before_bad": 120,
            "after_bad": 590,
        },
        threshold={"allowed_change": 0.005, "allowed_absolute": 0.005, "direction": "increase"},
        statistic={"test": "two-proportion z", "z": 14.2, "p_value": 1e-12, "change": 0.0395},
    )
    latency = RuleResult(
        rule="p99-latency",
        namespace=namespace,
        verdict=Verdict.PASS,
        reason="no regression: 120.0 ms → 121.0 ms",
        before=120.0,
        after=121.0,
    )
    return NamespaceVerdict(
        namespace=namespace,
        verdict=Verdict.FAIL,
        reason="error-rate: regression",
        rules=(error_rate, latency),
    )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def alert_logs() -> Iterator[list[logging.LogRecord]]:
    """Records of the dispatcher's logger (works even when product logging stops propagation)."""
    logger = logging.getLogger("canary_analyzer.alerting")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)
