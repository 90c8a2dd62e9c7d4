"""The operator verbs against a real service on uvicorn, and ``status`` against wrong URLs.

``status`` never prints raw Python structures and a URL that is not the service (a 404, an
HTML page, JSON of another shape, nothing listening) is exit 4 naming the URL; ``--watch``
refreshes until a terminal phase; ``request-upgrade`` asks the service for an upgrade; the
control verbs carry who and why (``--as``, ``--reason``), logged by the service with the verb.
"""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from analyzer.cli import main
from analyzer.commands.control import default_url, format_status
from analyzer.views.http_api import HttpServer, TokenCheck, create_app
from tests.commands.cli_run import run_cli
from tests.fixtures.canned_http import canned_server, closed_port
from tests.service.harness import make_service

TOKEN = "operator-token-value"
TARGET = {"kubernetes": {"context": "prod-eu", "cluster": "eu-1", "server": "https://eu-1"}}


@pytest.fixture
def served(tmp_path):
    service, _mesh, _, _, _ = make_service(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    app = create_app(service, service.metrics, TokenCheck(token_file), status_extra=TARGET)
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield service, f"http://127.0.0.1:{server.bound_port}", token_file
    finally:
        server.stop()


@pytest.fixture
def http_logs():
    """Records of the HTTP layer's logger (product logging stops propagation)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("canary_analyzer.http")
    handler = Keep(logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_request_upgrade_reaches_the_service_with_who_and_why(served, capsys, http_logs):
    service, url, token_file = served
    code = main([
        "request-upgrade", "--url", url, "--token-file", str(token_file), "--to-revision",
        "1-15-4", "--tag", "canary", "--namespaces", "a, b", "--reason", "CVE-2026-1 fix",
        "--as", "alice", "-o", "json",
    ])  # fmt: skip
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["requested_by"] == "alice" and answer["reason"] == "CVE-2026-1 fix"
    assert service.status()["pending_request"] == {
        "to_revision": "1-15-4", "tag": "canary", "namespaces": ["a", "b"],
    }  # fmt: skip
    logged = [r for r in http_logs if r.getMessage() == "control verb"]
    assert logged and logged[-1].fields == {
        "verb": "upgrade", "requested_by": "alice", "reason": "CVE-2026-1 fix",
        "client": "127.0.0.1",
    }  # fmt: skip


def test_a_verb_without_as_is_sent_by_the_os_user(served, capsys):
    import getpass

    _, url, token_file = served
    assert main(["pause", "--url", url, "--token-file", str(token_file), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["requested_by"] == getpass.getuser()


def test_a_bad_revision_is_refused_with_exit_2_in_words(served, capsys):
    _, url, token_file = served
    code = main(["request-upgrade", "--url", url, "--token-file", str(token_file),
                 "--to-revision", "Bad Rev"])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "to_revision:" in error and "[{" not in error


def test_status_yaml_and_json_carry_the_same_document_and_the_cluster(served, capsys):
    _, url, _ = served
    assert main(["status", "--url", url, "-o", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(["status", "--url", url, "-o", "yaml"]) == 0
    as_yaml = yaml.safe_load(capsys.readouterr().out)
    assert as_yaml["kubernetes"] == as_json["kubernetes"] == TARGET["kubernetes"]
    assert as_yaml["phase"] == as_json["phase"] == "idle"


def test_status_text_names_the_cluster_and_the_next_action(served, capsys):
    _, url, _ = served
    assert main(["status", "--url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cluster: eu-1 (context prod-eu)\nphase: idle")
    assert "next: nothing to do; ask for an upgrade with `canary-analyzer request-upgrade" in out


def test_watch_refreshes_a_bounded_number_of_times(served):
    _, url, _ = served
    done = run_cli("status", "--url", url, "--watch", "--interval", "0.1", "--max-refreshes", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("phase: idle") == 3


def test_watch_stops_at_a_terminal_phase_with_the_reasons():
    status = {
        "phase": "failed", "upgrade": {
            "tag": "default", "from_revision": "1-14-6", "to_revision": "1-15-4",
            "stage": "finished", "reason": "canary shop failed error-rate",
            "namespaces": [{"name": "shop", "state": "rolled_back", "verdict": "fail",
                            "reason": "1 critical rule failed",
                            "rules": [{"rule": "error-rate", "verdict": "fail",
                                       "reason": "5xx share 5.0 % after vs 1.0 % before"}]}]},
    }  # fmt: skip
    with canned_server(200, json.dumps(status).encode(), "application/json") as url:
        done = run_cli("status", "--url", url, "--watch", "--interval", "0.1",
                       "--max-refreshes", "50")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("phase: failed") == 1
    assert "  shop: rolled_back fail — 1 critical rule failed" in done.stdout
    assert "fail: error-rate — 5xx share 5.0 % after vs 1.0 % before" in done.stdout
    assert "next: read the reasons above" in done.stdout


@pytest.mark.parametrize(
    ("status", "body", "content_type", "said"),
    [
        (404, b"404 page not found", "text/plain", "HTTP 404 for /api/status"),
        (200, b"<html>Grafana</html>", "text/html", "answer is text/html, not JSON"),
        (200, b'{"status": "success"}', "application/json", "its JSON has no phase"),
        (200, b"[1, 2]", "application/json", "not JSON"),
    ],
)
def test_status_against_something_else_is_exit_4_naming_the_url(status, body, content_type, said):
    with canned_server(status, body, content_type) as url:
        done = run_cli("status", "--url", url)
    assert done.returncode == 4, done.stderr
    assert f"{url} is not a canary-analyzer service" in done.stderr and said in done.stderr
    assert "phase: ?" not in done.stdout


def test_status_with_nothing_listening_is_exit_4():
    done = run_cli("status", "--url", f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 4 and "cannot reach the service" in done.stderr


def test_status_never_prints_python_structures():
    text = format_status({
        "phase": "waiting-window", "pending_request": {"to_revision": "1-15-4", "tag": "x"},
        "refused_request": {"to_revision": "1-15-3", "reason": "older than the tag"},
        "queued_requests": [{"verb": "pause", "via": "pod-b", "at": "01:00"}],
    })  # fmt: skip
    assert "pending request: upgrade to 1-15-4 tag x" in text
    assert "refused request: upgrade to 1-15-3 (older than the tag)" in text
    assert not any(mark in text for mark in ("{", "}", "[", "'"))


def test_status_names_the_prune_offer_and_what_blocks_it():
    text = format_status({
        "phase": "done",
        "prune": {"revision": "1-14-6", "state": "in-use", "soak_ends": "2026-03-03T01:42:00",
                  "detail": "pod a/b runs its proxy; tag x points at it",
                  "blockers": ["pod a/b runs its proxy", "tag x points at it"]},
    })  # fmt: skip
    assert ("after the upgrade: prune of 1-14-6 in-use — pod a/b runs its proxy; tag x "
            "points at it") in text
    soaking = format_status({"phase": "done", "prune": {
        "revision": "1-14-6", "state": "soaking", "soak_ends": "2026-03-03T01:42:00",
        "detail": ""}})  # fmt: skip
    assert "prune of 1-14-6 soaking (soak ends 2026-03-03T01:42:00)" in soaking


def test_in_the_pod_a_verb_needs_only_its_reason(served):
    """As ``kubectl exec deploy/… -- canary-analyzer pause --reason …`` runs it: the chart
    sets ``CANARY_SERVICE__LISTEN`` and ``CANARY_SERVICE__TOKEN_FILE`` in the Pod, no URL."""
    service, url, token_file = served
    port = url.rsplit(":", 1)[1]
    done = run_cli(
        "pause", "--reason", "db migration", "--as", "alice",
        env={"CANARY_SERVICE__LISTEN": f"0.0.0.0:{port}",
             "CANARY_SERVICE__TOKEN_FILE": str(token_file)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert service.memory.paused
    assert "paused by alice: db migration" in [m["message"] for m in service.status()["timeline"]]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"CANARY_SERVICE__LISTEN": "0.0.0.0:9090"}, "http://127.0.0.1:9090"),
        ({"CANARY_SERVICE__LISTEN": "[::]:9091"}, "http://127.0.0.1:9091"),
        ({"CANARY_SERVICE__LISTEN": "0.0.0.0:0"}, "http://127.0.0.1:8080"),
        ({"CANARY_SERVICE__URL": "http://svc:80", "CANARY_SERVICE__LISTEN": "0.0.0.0:9090"},
         "http://svc:80"),
    ],
)  # fmt: skip
def test_the_default_url_follows_the_service_url_then_the_listen_port(environ, expected):
    assert default_url(environ) == expected


def test_rollback_of_a_promoted_upgrade_through_the_cli(served, capsys):
    service, url, token_file = served
    from analyzer.service.control import UpgradeRequestBody
    from tests.service.harness import run_tick

    assert main(["rollback", "--url", url, "--token-file", str(token_file)]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    code = main(["rollback", "--url", url, "--token-file", str(token_file), "--as", "alice",
                 "--reason", "p99 up since noon", "-o", "json"])
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["requested_by"] == "alice" and "rolling back upgrade" in answer["message"]
    assert service.wait_idle(60)
    assert service.worker.load_state().outcome.value == "rolled_back"


def test_status_text_shows_the_soak_and_the_offered_rollback():
    text = format_status({"phase": "done", "soak": {
        "state": "regressed", "ends": "2026-11-28T03:00:00+00:00", "looks": 4,
        "next_look": None, "detail": "billing: error-rate 0.5% → 5%",
        "regression": {"namespaces": ["billing"]}}})
    assert "soak: regressed until 2026-11-28T03:00:00+00:00 (4 looks)" in text
    assert "regression: billing: error-rate 0.5% → 5%" in text
    assert "canary-analyzer rollback" in text
