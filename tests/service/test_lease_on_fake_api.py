"""Leader election over the fake API server with the official client: one holder at a time,
a foreground run refuses while a service holds the lease, takes it once released."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analyzer.adapters.lease import KubernetesLease
from analyzer.runtime.leadership import LeaderElector, LeaseHeldError, holding_lease
from tests.fixtures.sim_fixtures import api_client_for

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def elector(mesh, name: str) -> LeaderElector:
    lease = KubernetesLease(api_client_for(mesh), "istio-system", "canary-analyzer")
    return LeaderElector(lease, name, timedelta(seconds=15))


def test_one_holder_then_takeover_after_expiry(mesh):
    first, second = elector(mesh, "a"), elector(mesh, "b")
    assert first.tick(NOW) is True
    assert second.tick(NOW + timedelta(seconds=5)) is False and second.holder == "a"
    assert first.tick(NOW + timedelta(seconds=10)) is True  # renewed
    assert second.tick(NOW + timedelta(seconds=24)) is False  # 14 s after the renewal
    assert second.tick(NOW + timedelta(seconds=26)) is True  # expired: taken over
    assert first.tick(NOW + timedelta(seconds=27)) is False


def test_foreground_run_refuses_while_a_service_leads_and_takes_a_released_lease(mesh):
    service = elector(mesh, "service-pod")
    assert service.tick(datetime.now(UTC))
    refused = elector(mesh, "upgrade-cli")
    with (
        pytest.raises(LeaseHeldError, match="service-pod holds the lease"),
        holding_lease(refused, lambda: datetime.now(UTC)),
    ):
        pass
    service.release()
    cli = elector(mesh, "upgrade-cli")
    with holding_lease(cli, lambda: datetime.now(UTC)):
        assert cli.is_leader(datetime.now(UTC))
        assert service.tick(datetime.now(UTC)) is False
    assert service.tick(datetime.now(UTC)) is True  # released at the end of the run
