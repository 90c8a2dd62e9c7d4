"""The restart history an upgrade leaves (``service.history``): one ``restarted`` line per
namespace the engine restarted, one ``judged`` line per verdict, each once even though the
observer sees the state after every action; a service restarted later appends, never
rewrites."""

from __future__ import annotations

from analyzer.core.upgrade import Outcome
from analyzer.service.control import UpgradeRequestBody
from analyzer.service.history import RestartHistory, read_history
from tests.service.harness import NAMES, make_service, run_tick


def test_an_upgrade_records_each_restart_and_verdict_once(tmp_path):
    path = tmp_path / "restarts.jsonl"
    service, _mesh, _clock, _sent, _ = make_service(tmp_path, history=RestartHistory(path))
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    state = service.view.state
    assert state.outcome is Outcome.PROMOTED
    records = read_history(path)
    restarted = [r for r in records if r.event == "restarted"]
    judged = [r for r in records if r.event == "judged"]
    assert sorted(r.namespace for r in restarted) == sorted(NAMES)
    assert sorted(r.namespace for r in judged) == sorted(NAMES)
    assert {r.upgrade_id for r in records} == {state.plan.upgrade_id}
    assert {r.source for r in records} == {"upgrade"}
    for record in restarted:
        assert record.restarted_at == state.record(record.namespace).restarted_at
    assert {r.verdict for r in judged} == {"pass"}

    before = path.read_text()
    again = RestartHistory(path)  # a restarted service: what is there is not written again
    again.observe(state)
    assert path.read_text() == before
