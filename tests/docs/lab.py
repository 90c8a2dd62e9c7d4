"""The lab the docs' runnable blocks run in: a recorded night in a real Prometheus, the
simulated mesh, and one ``serve`` per document.

What a block may use (documented at the top of each doc):

- ``$PROM_URL`` — a real Prometheus holding a backfilled night: the six namespaces of the
  sim's scenarios (accounts … orders) plus ``quiet``, all restarted at ``NIGHT`` (the
  literal time the docs show, 2026-11-20T01:30:00Z); ``catalog`` regressed (5xx 0.2 % →
  4.2 %, latency ×1.8), ``quiet`` has almost no traffic, the others did not change.
- ``$KUBECONFIG`` — the simulated mesh (scenario ``healthy``: tag ``default`` on
  ``1-14-6``, ``1-15-4`` installed beside it).
- ``$CANARY_SERVICE__URL``, ``$TOKEN_FILE`` — for documents with a ``needs=service`` block: a
  ``canary-analyzer serve`` of the document's own on that mesh (docs/operator.md's with the
  default Lease and state ConfigMap names, the others with names of their own), whose
  maintenance window is closed (a requested upgrade queues instead of running).
- ``$WORK`` — an empty directory of the document's own.
- ``canary-analyzer`` on ``$PATH``; the working directory is the repository root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import load_scenario
from tests.docs.blocks import ROOT, Block
from tests.fixtures.istio_history import NamespaceHistory, Traffic, start_history_prometheus
from tests.fixtures.polling import wait_until
from tests.fixtures.prometheus_server import PrometheusServer

#: The restart time every ``analyze`` example in the docs uses.
NIGHT = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
BIN = ROOT / ".venv" / "bin"


def _steady(rps: float, errors: float, median: float) -> Traffic:
    return Traffic(rps=rps, error_share=errors, latency_median_ms=median)


HISTORY = [
    NamespaceHistory("accounts", _steady(60, 0.003, 18), _steady(60, 0.003, 18), "accounts-api"),
    NamespaceHistory("billing", _steady(40, 0.004, 25), _steady(40, 0.004, 25), "billing-api"),
    NamespaceHistory("catalog", _steady(80, 0.002, 12), _steady(80, 0.042, 21.6), "catalog-api"),
    NamespaceHistory("delivery", _steady(30, 0.005, 30), _steady(30, 0.005, 30), "delivery-api"),
    NamespaceHistory("inventory", _steady(50, 0.003, 20), _steady(50, 0.003, 20), "inventory-api"),
    NamespaceHistory("orders", _steady(70, 0.003, 22), _steady(70, 0.003, 22), "orders-api"),
    NamespaceHistory("quiet", _steady(0.05, 0.01, 20), _steady(0.05, 0.01, 20), "cron"),
]


@dataclass
class BlockResult:
    block: Block
    code: int | None
    stdout: str
    stderr: str
    skipped: str | None = None
    seconds: float = 0.0


@dataclass
class Lab:
    prometheus: PrometheusServer
    mesh: SimulatedMesh
    work: Path
    services: dict[str, tuple[str, Path]] = field(default_factory=dict)

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANARY_")}
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "PROM_URL": self.prometheus.url,
                "KUBECONFIG": str(self.mesh.kubeconfig_path),
                "COLUMNS": "100",
                "NO_COLOR": "1",
            }
        )
        return env


def start_lab_prometheus(work: Path) -> PrometheusServer:
    return start_history_prometheus(work, HISTORY, NIGHT)


def closed_window_cron(now: datetime) -> str:
    """A daily one-hour window that opens twelve hours from now: closed while tests run."""
    opens = now + timedelta(hours=12)
    return f"{opens.minute} {opens.hour} * * *"


@contextmanager
def serve(lab: Lab, name: str, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """A ``canary-analyzer serve`` on the cluster ``env["KUBECONFIG"]`` points at."""
    token = lab.work / f"{name}.token"
    token.write_text("docs-test-token\n")
    env = {
        **env,
        "CANARY_SERVICE__REPORTS_DIR": str(lab.work / f"{name}-reports"),
        "CANARY_SERVICE__TICK_INTERVAL": "1s",
    }
    log = (lab.work / f"{name}-serve.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "canary-analyzer"), "serve", "--listen", "127.0.0.1:0",
         "--token-file", str(token), "--prometheus-url", lab.prometheus.url,
         "--window-cron", closed_window_cron(datetime.now(UTC)), "--window-duration", "1h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "serving http://HOST:PORT", or EOF when it failed
        if not line.startswith("serving "):
            process.wait(10)
            raise RuntimeError(
                f"serve did not start ({process.returncode}): "
                f"{(lab.work / f'{name}-serve.log').read_text()[-2000:]}"
            )
        url = line.split()[1]

        def leads() -> bool:
            status = httpx.get(f"{url}/api/status", timeout=5).json()
            return bool(status.get("is_leader")) and status.get("phase") != "standby"

        wait_until(leads, timeout=30, message=f"serve {name} leading")
        yield url, token
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()


@contextmanager
def lab() -> Iterator[Lab]:
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="docs-lab-"))
        stack.callback(shutil.rmtree, work, True)
        (work / "prometheus").mkdir()
        prometheus = start_lab_prometheus(work / "prometheus")
        stack.callback(prometheus.stop)
        mesh = SimulatedMesh(load_scenario("healthy"), kubeconfig_path=work / "kubeconfig")
        mesh.start()
        stack.callback(mesh.stop)
        yield Lab(prometheus=prometheus, mesh=mesh, work=work)


def run_block(block: Block, env: dict[str, str], work: Path, timeout: float = 90) -> BlockResult:
    """Run one block with bash (errexit, pipefail) in the repository root."""
    if "kubectl" in block.needs and shutil.which("kubectl") is None:
        return BlockResult(block, None, "", "", skipped="kubectl is not installed here")
    script = work / f"block-{block.line}.sh"
    script.write_text(block.text)
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", str(script)],
            cwd=ROOT, env={**env, "WORK": str(work)}, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        return BlockResult(block, None, str(error.stdout or ""), f"timed out after {timeout}s")
    return BlockResult(
        block, done.returncode, done.stdout, done.stderr, seconds=time.monotonic() - started
    )


def run_document(the_lab: Lab, blocks: list[Block]) -> list[BlockResult]:
    """A document's blocks in order, sharing its ``$WORK`` and (when needed) its service."""
    if not blocks:
        return []
    name = blocks[0].path.stem.lower()
    work = the_lab.work / f"doc-{name}"
    work.mkdir()
    env = the_lab.base_env()
    with ExitStack() as stack:
        if any("service" in b.needs for b in blocks):
            if name != "operator":  # the operator guide shows the default Lease and ConfigMap
                env["CANARY_SERVICE__LEASE_NAME"] = f"docs-{name}"
                env["CANARY_UPGRADE__STATE_CONFIGMAP"] = f"docs-{name}-state"
            url, token = stack.enter_context(serve(the_lab, name, env))
            env.update({"CANARY_SERVICE__URL": url, "TOKEN_FILE": str(token)})
        return [run_block(block, env, work) for block in blocks]
