"""``serve`` plans a night exactly as ``upgrade`` does: the namespaces ordered by the traffic
they served in the same hours before (busiest first, the quiet ones last), and the forecast
recorded — in the plan the state keeps, in ``/api/status`` and, for each quiet namespace, as
a timeline note naming the policy that will judge it and what each rule can detect.

The traffic comes from a real Prometheus holding backfilled Istio history; the service
wires it as ``serve`` does (``service.forecast.night_outlook``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analyzer.core.upgrade import Outcome
from analyzer.service.control import UpgradeRequestBody
from analyzer.service.forecast import night_outlook
from analyzer.settings import Settings
from tests.fixtures.fakes import FakeMesh
from tests.fixtures.istio_history import NamespaceHistory, Traffic, history_source
from tests.service.harness import make_service, run_tick

NOW = datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
#: listed a, b, c, d; the default rules need 500 requests per 10-minute window
RATES = {"a": 0.1, "b": 20.0, "c": 5.0, "d": 50.0}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    histories = [
        NamespaceHistory(name, Traffic(rps=rate), Traffic(rps=rate)) for name, rate in RATES.items()
    ]
    with history_source(tmp_path_factory.mktemp("forecast"), histories, NOW) as source:
        yield source


def test_serve_orders_the_night_by_evidence_and_records_the_forecast(tmp_path, source):
    settings = Settings()

    def outlook(rules, namespaces, now):  # what ``serve`` wires to Prometheus
        return night_outlook(source, rules, settings, namespaces, now)

    service, _mesh, _clock, _sent, _ = make_service(
        tmp_path, mesh=FakeMesh.standard(tuple(RATES)), settings=settings, outlook=outlook,
        start=NOW,
    )  # fmt: skip
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    state = service.view.state
    assert state.outcome is Outcome.PROMOTED
    # busiest first, the quiet namespace last (listed a, b, c, d)
    assert state.plan.waves == (("d",), ("b", "c"), ("a",))
    forecast = {each.namespace: each for each in state.plan.forecast}
    assert [each.namespace for each in state.plan.forecast] == ["d", "b", "c", "a"]
    assert forecast["a"].quiet and forecast["a"].policy == "pool"
    assert not forecast["d"].quiet and forecast["d"].policy == "own"
    assert forecast["d"].requests_per_second == pytest.approx(50, rel=0.2)
    assert forecast["a"].requests_per_window < 500 <= forecast["c"].requests_per_window
    # /api/status carries it with the upgrade (the status page and report draw it)
    shown = service.status()["upgrade"]["forecast"]
    assert [row["namespace"] for row in shown] == ["d", "b", "c", "a"]
    assert shown[-1]["rules"] and {"rule", "detectable", "text"} <= set(shown[-1]["rules"][0])
    # the timeline names the policy that will judge the quiet namespace, rule by rule
    notes = {
        item["namespace"]: item["message"]
        for item in service.status()["timeline"]
        if item["reason"] == "Forecast"
    }
    # one per quiet namespace (a, and any whose latency tail is too thin for a rule alone)
    assert list(notes) == [each.namespace for each in state.plan.forecast if each.quiet]
    assert "a" in notes and "d" not in notes and "b" not in notes
    assert "quiet policy pool" in notes["a"]
    for rule in forecast["a"].rules:
        assert f"{rule.rule} {rule.text}" in notes["a"]
    assert forecast["d"].rules and any(r.detectable for r in forecast["d"].rules)
    # the report the service wrote shows the forecast and the notes
    report = (service.reports_dir / f"upgrade-{state.plan.upgrade_id}.html").read_text()
    assert 'id="forecast"' in report and 'data-namespace="a"' in report
    assert "quiet policy: pool" in report and "<td>Forecast</td>" in report


def test_serve_without_prometheus_plans_as_listed_with_no_forecast(tmp_path):
    service, _mesh, _clock, _sent, _ = make_service(
        tmp_path, mesh=FakeMesh.standard(tuple(RATES)), start=NOW
    )
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    state = service.view.state
    assert state.plan.waves == (("a",), ("b", "c"), ("d",))
    assert state.plan.forecast == () and "forecast" not in service.status()["upgrade"]
