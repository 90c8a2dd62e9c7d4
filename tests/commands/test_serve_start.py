"""``serve`` at start: a warning when nobody would be paged, and the cluster it acts on in
``/api/status``. A real ``serve`` process on the simulated mesh."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.commands.cli_run import EMPTY_PROMQL_ANSWER, REPO
from tests.fixtures.canned_http import canned_server
from tests.fixtures.sim_fixtures import make_mesh  # noqa: F401

pytestmark = pytest.mark.timeout(180)


@contextmanager
def running_serve(
    mesh, prometheus: str, tmp_path, *extra: str, **env_extra: str
) -> Iterator[tuple[str, Path]]:
    """A ``serve`` process on the mesh, from its ``serving http://…`` line until SIGTERM on
    leaving; yields (its base URL, the path of its log). ``env_extra`` adds settings."""
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
    env.update(PYTHONPATH=str(REPO), CANARY_SERVICE__REPORTS_DIR=str(tmp_path / "reports"))
    env.update(env_extra)
    command = [
        sys.executable, "-m", "analyzer", "serve", "--listen", "127.0.0.1:0", "--kubeconfig",
        str(mesh.kubeconfig_path), "--prometheus-url", prometheus, "--rules",
        str(REPO / "rules"), *extra,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env)
    try:
        line = process.stdout.readline().decode().strip() if process.stdout else ""
        assert line.startswith("serving http://"), log_path.read_text()[-2000:]
        yield line.removeprefix("serving "), log_path
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def serve(mesh, prometheus: str, tmp_path, *extra: str) -> tuple[str, str]:
    """Start ``serve``, read ``/api/status``, stop it; returns (status JSON, stderr)."""
    with running_serve(mesh, prometheus, tmp_path, *extra) as (url, log_path):
        status = httpx.get(f"{url}/api/status", timeout=10).text
    return status, log_path.read_text()


def test_without_receivers_serve_warns_that_nobody_is_paged(make_mesh, tmp_path):  # noqa: F811
    mesh = make_mesh()
    with canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus:
        status, log = serve(mesh, prometheus, tmp_path)
    warnings = [json.loads(line) for line in log.splitlines() if "nobody will be paged" in line]
    assert warnings and warnings[0]["level"] == "warning", log[-2000:]
    assert json.loads(status)["kubernetes"]["context"] == "simulated-mesh"


def test_with_a_receiver_serve_does_not_warn(make_mesh, tmp_path):  # noqa: F811
    mesh = make_mesh()
    with canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus:
        _, log = serve(mesh, prometheus, tmp_path, "--webhook-url", "http://127.0.0.1:9/hook")
    assert "nobody will be paged" not in log


def test_serve_shadow_says_so_writes_nothing_and_sends_no_alert(make_mesh, tmp_path):  # noqa: F811
    """``serve --shadow`` on the simulated mesh: ``/api/status`` says ``mode: shadow`` and
    ``phase: shadow``, the log says nothing will be acted on (not "nobody will be paged":
    that is the point), and the cluster receives no write at all — no state ConfigMap,
    no Lease, no Event — although a receiver is configured."""
    from tests.fixtures.polling import wait_until

    mesh = make_mesh()
    with (
        canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus,
        running_serve(
            mesh, prometheus, tmp_path, "--shadow", "--webhook-url", "http://127.0.0.1:9/hook",
            CANARY_SERVICE__TICK_INTERVAL="200ms",
        ) as (url, log_path),
    ):  # fmt: skip
        status = wait_until(
            lambda: (s := httpx.get(f"{url}/api/status", timeout=10).json())["phase"]
            == "shadow" and s,
            timeout=60, message="the shadow phase in /api/status",
        )  # fmt: skip
        assert status["mode"] == "shadow" and status["shadow"]["acts"] is False
        assert {"foo", "bar", "baz"} <= set(status["shadow"]["watched"])
    log = log_path.read_text()
    assert "shadow mode (service.mode: shadow)" in log and "nobody will be paged" not in log
    assert mesh.writes() == []
