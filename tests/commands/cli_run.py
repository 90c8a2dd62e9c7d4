"""Run the command line as users do: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: An answer of the PromQL API to any query: success, no series.
EMPTY_PROMQL_ANSWER = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """``canary-analyzer ARGS`` with the environment minus any ``CANARY_*``, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CANARY_", "KUBECONFIG"))}
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**base, "PYTHONPATH": str(REPO), "COLUMNS": "250", **(env or {})},
    )
