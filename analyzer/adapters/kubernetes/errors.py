"""The cluster's refusals the callers tell apart.

Why it exists: the port's errors (``ClusterError`` and its kinds, analyzer/core/ports) say
what went wrong for any cluster; these two say what only a Kubernetes API server answers —
a request refused as wrong (4xx with a Status message) and a paused Deployment, which
kubectl refuses to restart too — so the service can report them as the person's to fix.
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from analyzer.core.ports import ClusterError


class ClusterRefusedError(ClusterError):
    """The API server answered a 4xx other than 404 (and 409/429, which are retried): the
    request itself is wrong (invalid, forbidden). ``api_message`` is the Status message."""

    def __init__(self, what: str, status: int, reason: str, api_message: str) -> None:
        super().__init__(
            f"{what}: HTTP {status} {reason}" + (f": {api_message}" if api_message else "")
        )
        self.status = status
        self.api_message = api_message


def api_message(error: ApiException) -> str:
    """The ``message`` of the Status body the API server sent, if any."""
    try:
        return str(json.loads(error.body or b"{}").get("message") or "")
    except (ValueError, AttributeError, TypeError):
        return ""


class WorkloadPausedError(ClusterError):
    """A paused Deployment cannot be restarted (kubectl refuses too)."""
