"""Render the Helm chart with the real Helm engine (Helm's Go SDK through helm-python-sdk).

``helm-python-sdk`` binds ``libhelm_c`` (a C ABI over Helm v4's official Go SDK) with
ctypes: ``Chart.render`` is ``helm template`` (offline, no cluster), ``lint`` is
``helm lint``. Nothing here substitutes or imitates template syntax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "canary-analyzer"
RELEASE = "canary"
NAMESPACE = "mesh-ops"
FULLNAME = f"{RELEASE}-canary-analyzer"


def render_files(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template canary ./chart -n mesh-ops``."""
    import helm_python

    with helm_python.Chart.load(str(CHART)) as chart:
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders (NOTES.txt left out)."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    """Plain ``value`` environment variables of the service container."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
