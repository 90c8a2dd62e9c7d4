"""The HTTP interface on a real uvicorn: open read-only endpoints, token-guarded control.

Control endpoints without the right bearer token answer 401 and change nothing; with it they
act. The CLI verbs talk to the same server.
"""

from __future__ import annotations

import json

import httpx
import pytest

from analyzer.cli import main
from analyzer.core.alerts import AlertName
from analyzer.core.upgrade import Outcome
from analyzer.core.verdicts import Verdict
from analyzer.service.control import Requester, UpgradeRequestBody
from analyzer.views.http_api import HttpServer, TokenCheck, create_app
from analyzer.views.status_page import register_status_routes
from tests.service.harness import fixed_looks, make_service, run_tick

TOKEN = "s3cret-token-value"


@pytest.fixture
def served(tmp_path):
    service, mesh, _, _, _ = make_service(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    app = create_app(
        service,
        service.metrics,
        TokenCheck(token_file),
        extra_routes=lambda app: register_status_routes(app, service.status, service.reports_dir),
    )
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield service, mesh, f"http://127.0.0.1:{server.bound_port}", token_file
    finally:
        server.stop()


@pytest.mark.parametrize("verb", ["pause", "resume", "approve", "abort", "upgrade", "approve-prune"])
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic " + TOKEN, "Bearer"])
def test_control_without_the_token_is_401_and_changes_nothing(served, verb, header):
    service, mesh, url, _ = served
    headers = {"Authorization": header} if header else {}
    before = (service.memory.to_document(), list(mesh.writes))
    answer = httpx.post(f"{url}/api/{verb}", headers=headers, json={"to_revision": "1-15-4"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert (service.memory.to_document(), list(mesh.writes)) == before


def test_read_only_endpoints_are_open(served):
    _, _, url, _ = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'canary_analyzer_upgrade_phase{phase="idle"} 1.0' in metrics
    assert "canary_analyzer_rollbacks_total" in metrics
    status = httpx.get(f"{url}/api/status").json()
    assert status["phase"] == "idle" and status["paused"] is False
    assert "error-rate" in status["rules"]["names"]


def test_control_with_the_token_acts(served):
    service, _, url, _ = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(f"{url}/api/pause", headers=auth).status_code == 200
    assert service.memory.paused
    answer = httpx.post(f"{url}/api/upgrade", headers=auth, json={"to_revision": "1-15-4"})
    assert answer.status_code == 200 and "queued" in answer.json()["message"]
    assert service.status()["pending_request"] == {"to_revision": "1-15-4"}
    bad = httpx.post(f"{url}/api/upgrade", headers=auth, json={"to_revision": "Bad Rev"})
    assert bad.status_code == 422
    nothing_held = httpx.post(f"{url}/api/approve", headers=auth)
    assert nothing_held.status_code == 409 and "nothing to approve" in nothing_held.json()["detail"]


def test_cli_verbs_talk_to_the_service(served, capsys):
    service, _, url, token_file = served
    assert main(["pause", "--url", url, "--token-file", str(token_file)]) == 0
    assert service.memory.paused
    assert main(["status", "--url", url, "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["paused"] is True
    wrong = token_file.parent / "wrong"
    wrong.write_text("nope")
    assert main(["resume", "--url", url, "--token-file", str(wrong)]) == 2
    assert service.memory.paused
    assert main(["resume", "--url", url, "--token-file", str(token_file)]) == 0
    assert not service.memory.paused
    assert main(["status", "--url", "http://127.0.0.1:9"]) == 4


def _serve(service, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = HttpServer(
        create_app(service, service.metrics, TokenCheck(token_file)), "127.0.0.1", 0
    )
    server.start()
    return server, f"http://127.0.0.1:{server.bound_port}", token_file


def _timeline(service) -> list[str]:
    return [item["message"] for item in service.status()["timeline"]]


def test_who_and_why_of_a_verb_are_in_the_timeline_and_the_answer(tmp_path, capsys):
    service, _, _, _, _ = make_service(tmp_path)
    server, url, token_file = _serve(service, tmp_path)
    try:
        common = ["--url", url, "--token-file", str(token_file)]
        assert main(["pause", *common, "--as", "alice", "--reason", "db  migration",
                     "--output", "json"]) == 0  # fmt: skip
        answer = json.loads(capsys.readouterr().out)
        assert (answer["requested_by"], answer["reason"]) == ("alice", "db migration")
        assert main(["resume", *common, "--as", "bob"]) == 0
    finally:
        server.stop()
    assert "paused by alice: db migration" in _timeline(service)
    assert "resumed by bob" in _timeline(service)


def test_an_approve_names_its_sender_in_the_timeline_and_the_held_alert_resolution(tmp_path):
    script = lambda _n, i: Verdict.INCONCLUSIVE if i <= 3 else Verdict.PASS  # noqa: E731
    # the script counts judgements: one look per window and extension
    service, _, _, sent, _ = make_service(tmp_path, script=script, settings=fixed_looks())
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    assert service.status()["phase"] == "held"
    server, url, token_file = _serve(service, tmp_path)
    try:
        assert main(["approve", "--url", url, "--token-file", str(token_file),
                     "--as", "carol", "--reason", "dashboards look fine"]) == 0  # fmt: skip
    finally:
        server.stop()
    assert any("approved by carol: dashboards look fine" in m for m in _timeline(service))
    resolved = [a for a in sent if a.name is AlertName.HELD and a.ends_at is not None]
    assert resolved and resolved[-1].annotations["requested_by"] == "carol"
    assert resolved[-1].annotations["reason"] == "dashboards look fine"


def test_an_abort_names_its_sender_in_the_rollback_reason_and_alerts(tmp_path):
    script = lambda _n, _i: Verdict.INCONCLUSIVE  # noqa: E731
    service, _, _, sent, _ = make_service(tmp_path, script=script)
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    service.abort(Requester("dave", "db migration tonight"))
    assert service.wait_idle(timeout=60)
    state = service.view.state
    assert state.outcome is Outcome.ROLLED_BACK
    assert state.rollback_reason == "aborted by dave: db migration tonight"
    started = [a for a in sent if a.name is AlertName.ROLLBACK_STARTED and a.ends_at is None]
    assert started and "aborted by dave: db migration tonight" in started[-1].description
    held_end = [a for a in sent if a.name is AlertName.HELD and a.ends_at is not None]
    assert held_end[-1].annotations == {"requested_by": "dave", "reason": "db migration tonight"}


def test_a_verb_without_a_sender_reads_as_before(tmp_path):
    service, _, _, _, _ = make_service(tmp_path)
    service.pause()
    assert "paused by an operator" in _timeline(service)


def test_approve_prune_over_http_answers_in_words(served):
    """``/api/approve-prune`` goes through the same answer as the other verbs (it used to
    call it with the wrong arguments and fail with HTTP 500)."""
    _, _, url, _ = served
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Canary-Actor": "alice"}
    answer = httpx.post(f"{url}/api/approve-prune", headers=auth)
    assert answer.status_code == 409 and "prune is off" in answer.json()["detail"]


def test_rollback_over_http_refuses_in_words_when_nothing_was_promoted(served):
    _, _, url, _ = served
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Canary-Actor": "alice"}
    answer = httpx.post(f"{url}/api/rollback", headers=auth)
    assert answer.status_code == 409 and "nothing to roll back" in answer.json()["detail"]
    assert httpx.post(f"{url}/api/rollback").status_code == 401
