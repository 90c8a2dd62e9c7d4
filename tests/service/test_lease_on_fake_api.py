"""Leader election over the fake API server with the official client: one holder at a time,
a foreground run refuses while a service holds (and renews) the lease, takes it once
released or once its holder has stopped renewing for a lease duration by our own clock
(client-go tools/leaderelection/leaderelection.go); Lease times are written as MicroTime
with six fractional digits, which the API server requires
(k8s.io/apimachinery pkg/apis/meta/v1/micro_time.go)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from analyzer.adapters.lease import KubernetesLease
from analyzer.core.leadership import LeaseRecord
from analyzer.service.leadership import LeaderElector, LeaseHeldError, holding_lease
from tests.fixtures.sim_fixtures import api_client_for

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # zero microseconds, on purpose


def lease_of(mesh) -> KubernetesLease:
    return KubernetesLease(api_client_for(mesh), "istio-system", "canary-analyzer")


def elector(mesh, name: str, seconds: float = 15) -> LeaderElector:
    return LeaderElector(lease_of(mesh), name, timedelta(seconds=seconds))


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_one_holder_then_takeover_a_duration_after_the_last_change_we_saw(mesh):
    first, second = elector(mesh, "a"), elector(mesh, "b")
    assert first.tick(at(0)) is True
    assert second.tick(at(5)) is False and second.holder == "a"
    assert first.tick(at(10)) is True  # renewed
    assert second.tick(at(24)) is False  # sees the renewal now: live until 24 + 15
    assert second.tick(at(38)) is False
    assert second.tick(at(39)) is True  # unchanged for a whole duration: taken over
    assert first.tick(at(40)) is False


def test_renew_times_are_written_with_six_fractional_digits(mesh, kube_client):
    assert elector(mesh, "a").tick(NOW)
    raw = kube_client.call_api(*kube_client.param_serialize(
        method="GET",
        resource_path="/apis/coordination.k8s.io/v1/namespaces/istio-system/leases/"
                      "canary-analyzer", auth_settings=["BearerToken"]))  # fmt: skip
    raw.read()
    spec = json.loads(raw.data)["spec"]
    assert spec["renewTime"] == spec["acquireTime"] == "2026-11-27T01:00:00.000000Z"


@pytest.mark.parametrize(("value", "detail"), [
    ("2026-11-27T01:00:00Z", 'cannot parse "Z" as ".000000"'),
    ("2026-11-27T01:00:00.123456789Z", 'cannot parse "789Z" as "Z07:00"'),
])  # fmt: skip
def test_the_api_server_refuses_a_micro_time_without_six_digits(mesh, kube_client, value,
                                                                 detail):
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "other"}, "spec": {"holderIdentity": "x", "renewTime": value}}
    response = kube_client.call_api(*kube_client.param_serialize(
        method="POST", resource_path="/apis/coordination.k8s.io/v1/namespaces/istio-system/leases",
        header_params={"Content-Type": "application/json"}, body=body,
        auth_settings=["BearerToken"]))  # fmt: skip
    response.read()
    assert response.status == 400
    message = json.loads(response.data)["message"]
    assert message == (
        f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" as '
        f'"2006-01-02T15:04:05.000000Z07:00": {detail}')


def test_foreground_run_refuses_while_a_service_renews_and_takes_a_released_lease(mesh):
    service = elector(mesh, "service-pod", seconds=1)
    assert service.tick(datetime.now(UTC))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(0.1):
            service.tick(datetime.now(UTC))

    renewing = threading.Thread(target=renew, daemon=True)
    renewing.start()
    try:
        refused = elector(mesh, "upgrade-cli", seconds=1)
        with (
            pytest.raises(LeaseHeldError, match="service-pod holds the lease"),
            holding_lease(refused, lambda: datetime.now(UTC)),
        ):
            pass
    finally:
        stop.set()
        renewing.join(timeout=10)
    service.release()
    cli = elector(mesh, "upgrade-cli", seconds=1)
    with holding_lease(cli, lambda: datetime.now(UTC)):
        assert cli.is_leader(datetime.now(UTC))
        assert service.tick(datetime.now(UTC)) is False
    assert service.tick(datetime.now(UTC)) is True  # released at the end of the run


def test_foreground_run_takes_a_lease_its_dead_holder_stopped_renewing(mesh):
    # the holder's renewTime claims it renewed a moment ago by its (fast) clock
    ahead = datetime.now(UTC) + timedelta(hours=1)
    lease_of(mesh).create(LeaseRecord("crashed-pod", timedelta(seconds=1), ahead, ahead))
    cli = elector(mesh, "upgrade-cli", seconds=1)
    with holding_lease(cli, lambda: datetime.now(UTC)):
        assert cli.is_leader(datetime.now(UTC))
        assert lease_of(mesh).read().holder == "upgrade-cli"
