"""The service's decisions on a virtual clock: windows, requests, pause, approve, abort."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analyzer.core.alerts import AlertName
from analyzer.core.upgrade import Outcome
from analyzer.core.verdicts import Verdict
from analyzer.service.control import ControlRefusedError, UpgradeRequestBody
from analyzer.service.night_plan import NightOutlook
from analyzer.settings import ServiceSettings, Settings
from tests.service.harness import fixed_looks, make_service, run_tick


def request(service, to="1-15-4"):
    return service.request_upgrade(UpgradeRequestBody(to_revision=to))


def test_requested_upgrade_runs_to_the_end_and_is_not_repeated(tmp_path):
    service, mesh, _clock, sent, _ = make_service(tmp_path)
    assert "queued" in request(service)["message"]
    run_tick(service)
    assert service.view.state.outcome is Outcome.PROMOTED
    assert set(mesh.restarts().values()) == {1}
    assert service.status()["upgrade"]["namespaces_done"] == 6
    assert any(alert.name is AlertName.UPGRADE_DONE for alert in sent)
    assert (tmp_path / "reports" / f"upgrade-{service.view.state.plan.upgrade_id}.html").exists()
    run_tick(service)  # nothing pending any more: no second upgrade
    assert set(mesh.restarts().values()) == {1}
    assert service.status()["phase"] == "done"


def test_the_report_is_written_by_the_writer_the_command_wires_in(tmp_path):
    """The service draws no report itself: with the HTML writer wired in (above) the
    report is there; without one the upgrade runs the same and no report is written."""
    service, _mesh, _clock, _sent, _ = make_service(tmp_path, report_writer=None)
    request(service)
    run_tick(service)
    assert service.view.state.outcome is Outcome.PROMOTED
    assert service.status()["upgrade"]["report"] == (
        f"upgrade-{service.view.state.plan.upgrade_id}.html"
    )
    assert not (tmp_path / "reports").exists()
    assert service.status()["reports"] == []


def test_window_closing_mid_plan_holds_and_the_next_window_finishes(tmp_path):
    # a 20-minute window at 01:00: room for the tag move, gateway and canary, not for wave 2
    # fixed looks: every-step looks finish the canary in time for wave 2
    service, mesh, clock, _, _ = make_service(
        tmp_path, cron="0 1 * * *", duration=timedelta(minutes=20), settings=fixed_looks()
    )
    request(service)
    run_tick(service)
    assert service.status()["phase"] == "waiting-window"
    restarts = mesh.restarts()
    assert restarts["a/web"] == 1 and restarts["b/web"] == 0
    clock.advance(timedelta(hours=2))  # outside any window: nothing starts
    run_tick(service)
    assert mesh.restarts()["b/web"] == 0
    assert not service.status()["window"]["open"]
    clock_next = clock.now().replace(hour=1, minute=0) + timedelta(days=1)
    clock.advance(clock_next - clock.now())
    judged_from = []
    for _ in range(5):  # one wave per window when waves do not fit together
        run_tick(service)
        if service.view.state.finished:
            break
        opening = clock.now().replace(hour=1, minute=0, second=0) + timedelta(days=1)
        clock.advance(opening - clock.now())  # to the next window's opening
    assert service.view.state.outcome is Outcome.PROMOTED
    assert set(mesh.restarts().values()) == {1}
    # a wave planned in one window and restarted in the next is stamped when it restarts:
    # each wave's restart lies in the window it was judged in, never in an earlier one
    for record in service.view.state.namespaces:
        judged_from.append(record.restarted_at)
    assert all(moment.hour == 1 and moment.minute < 20 for moment in judged_from)
    assert len({moment.date() for moment in judged_from}) == 3  # three waves, three nights


def test_no_window_opening_means_no_start(tmp_path):
    service, mesh, _, _, _ = make_service(tmp_path, cron="0 3 * * *", duration=timedelta(hours=1))
    request(service)
    run_tick(service)
    assert service.status()["phase"] == "waiting-window"
    assert set(mesh.restarts().values()) == {0}
    assert service.status()["pending_request"]["to_revision"] == "1-15-4"


def test_pause_blocks_starting_and_resume_lets_it_go(tmp_path):
    service, mesh, _, _, _ = make_service(tmp_path)
    service.pause()
    request(service)
    run_tick(service)
    assert service.status()["phase"] == "paused" and service.status()["paused"]
    assert set(mesh.restarts().values()) == {0}
    service.resume()
    run_tick(service)
    assert service.view.state.outcome is Outcome.PROMOTED


def test_pause_survives_a_restart_of_the_service(tmp_path):
    service, _, _, _, _ = make_service(tmp_path)
    service.pause()
    document = service.service_store.load()
    assert document["paused"] is True


def test_held_upgrade_is_approved_and_finishes(tmp_path):
    script = lambda _n, i: Verdict.INCONCLUSIVE if i <= 3 else Verdict.PASS  # noqa: E731
    # the script counts judgements: one look per window and extension
    service, mesh, _, sent, _ = make_service(tmp_path, script=script, settings=fixed_looks())
    request(service)
    run_tick(service)
    assert service.status()["phase"] == "held"
    assert any(alert.name is AlertName.HELD for alert in sent)
    with pytest.raises(ControlRefusedError):
        request(service)  # a held upgrade blocks new requests
    service.approve()
    run_tick(service)
    assert service.view.state.outcome is Outcome.PROMOTED
    assert set(mesh.restarts().values()) == {1}


def test_abort_of_a_held_upgrade_rolls_back(tmp_path):
    script = lambda _n, _i: Verdict.INCONCLUSIVE  # noqa: E731
    service, mesh, _, sent, _ = make_service(tmp_path, script=script)
    request(service)
    run_tick(service)
    service.abort()
    assert service.wait_idle(timeout=60)
    state = service.view.state
    assert state.outcome is Outcome.ROLLED_BACK and "aborted by operator" in state.rollback_reason
    assert mesh.tag_revision["default"] == "1-14-6"
    assert any(alert.name is AlertName.ROLLBACK_FINISHED for alert in sent)


def test_verbs_that_do_not_apply_are_refused(tmp_path):
    service, _, _, _, _ = make_service(tmp_path)
    with pytest.raises(ControlRefusedError):
        service.approve()
    with pytest.raises(ControlRefusedError):
        service.abort()


def test_declared_upgrade_in_settings_starts_by_itself(tmp_path):

    settings = Settings(service=ServiceSettings(to_revision="1-15-4"))
    service, mesh, _, _, _ = make_service(tmp_path, settings=settings)
    run_tick(service)
    assert service.view.state.outcome is Outcome.PROMOTED
    run_tick(service)
    assert set(mesh.restarts().values()) == {1}


def test_detected_upgrade_is_opt_in(tmp_path):

    service, mesh, _, _, _ = make_service(tmp_path)
    run_tick(service)
    assert set(mesh.restarts().values()) == {0}  # a newer ready revision alone does nothing
    detecting = Settings(service=ServiceSettings(detect_upgrades=True))
    service, mesh, _, _, _ = make_service(tmp_path, settings=detecting)
    run_tick(service)
    assert service.view.state.plan.to_revision == "1-15-4"
    assert service.view.state.outcome is Outcome.PROMOTED


def test_preflight_refusal_is_reported_not_retried(tmp_path):
    service, mesh, _, _, _ = make_service(tmp_path)
    request(service, to="9-9-9")
    run_tick(service)
    status = service.status()
    assert status["phase"] == "idle" and "unknown revision 9-9-9" in status["message"]
    assert status["refused_request"]["request"]["to_revision"] == "9-9-9"
    assert status["pending_request"] is None
    assert mesh.writes == []


def test_a_declared_upgrade_refused_by_preflight_is_not_retried_each_pass(tmp_path, caplog):
    declared = Settings(service=ServiceSettings(to_revision="9-9-9"))
    service, mesh, _, _, _ = make_service(tmp_path, settings=declared)
    for _ in range(3):
        run_tick(service)
    refusals = [r for r in caplog.records if r.getMessage() == "upgrade request refused by preflight"]
    assert len(refusals) == 1
    assert service.status()["refused_request"]["request"]["to_revision"] == "9-9-9"
    assert mesh.writes == []


def test_a_request_made_while_the_night_is_planned_runs_after_it(tmp_path):
    """The operator asks again while the first request is being planned (preflight and
    forecast take seconds on a real cluster): the newer request is not cleared with the
    one that starts; it is taken up when that upgrade has ended (here preflight refuses
    it, in words: the tag is on 1-15-4 by then)."""
    posted = []

    def outlook(_rules, _namespaces, _now):  # planning the first night: a second request lands
        if not posted:
            posted.append(request(service, to="1-15-4")["request"])
        return NightOutlook()

    service, _mesh, _, _, _ = make_service(tmp_path, outlook=outlook)
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4", namespaces=["a", "b"]))
    run_tick(service)
    assert service.view.state.plan.namespaces == ("a", "b")
    assert service.status()["pending_request"] == {"to_revision": "1-15-4"}
    run_tick(service)  # the first ended: the newer one is taken up
    status = service.status()
    assert status["pending_request"] is None
    assert status["refused_request"]["request"] == {"to_revision": "1-15-4"}
    assert status["refused_request"]["problems"] == ["tag default already points at 1-15-4"]
