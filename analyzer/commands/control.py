"""The ``status``, ``pause``, ``resume``, ``approve`` and ``abort`` subcommands.

They talk to a running ``serve`` over HTTP. Control verbs send the bearer token from
``--token-file`` (or ``CANARY_SERVICE__TOKEN_FILE``); ``status`` needs none.
Exit codes: 0 done, or queued · 2 refused (bad token, nothing to approve, a standby that
could not queue the verb) · 4 service unreachable.

"Queued" (HTTP 202; the message reads ``queued for the leader <holder>: <verb>``, and
``--output json`` shows ``"queued": true`` and the request's ``id``): the replica that
answered is on standby; it recorded the verb in the state ConfigMap and the leader applies
it on its next pass (every ``tick_interval``), in order, through the same code as a verb
sent to it directly. If the leader then refuses it (e.g. approve with nothing held), the
refusal is in ``status``'s timeline and the leader's log; ``status`` lists the verbs still
waiting (``queued_requests``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import httpx

from analyzer.errors import BadInputError, ExitCode, UnreachableError

DEFAULT_URL = "http://127.0.0.1:8080"

VERBS = {
    "status": "show the running service's plan, progress and last verdicts",
    "pause": "pause the running upgrade after the current step (nothing new starts)",
    "resume": "resume a paused upgrade",
    "approve": "let a held upgrade go on (accept an inconclusive verdict)",
    "abort": "stop the upgrade and roll back the namespaces already moved",
}


def register(subparsers) -> None:
    for verb, help_text in VERBS.items():
        parser = subparsers.add_parser(verb, help=help_text, description=help_text)
        parser.add_argument(
            "--url",
            default=os.environ.get("CANARY_SERVICE__URL", DEFAULT_URL),
            help=f"the service's base URL (default $CANARY_SERVICE__URL or {DEFAULT_URL})",
        )
        if verb != "status":
            parser.add_argument(
                "--token-file",
                type=Path,
                default=os.environ.get("CANARY_SERVICE__TOKEN_FILE"),
                help="file holding the control token (default $CANARY_SERVICE__TOKEN_FILE)",
            )
        parser.add_argument("--output", choices=("text", "json"), default="text")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
        parser.set_defaults(handler=control_command, verb=verb)


def _token(path: Path | None) -> str:
    if path is None:
        raise BadInputError("a control verb needs --token-file (or CANARY_SERVICE__TOKEN_FILE)")
    try:
        token = Path(path).read_text().strip()
    except OSError as error:
        raise BadInputError(f"cannot read token file {path}: {error.strerror}") from None
    if not token:
        raise BadInputError(f"token file {path} is empty")
    return token


def call_service(
    url: str, verb: str, token: str | None, timeout: float, body: dict | None = None
) -> dict:
    """One request to the service; maps failures to the contract's errors."""
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as http:
            if verb == "status":
                response = http.get(f"{base}/api/status")
            else:
                response = http.post(
                    f"{base}/api/{verb}",
                    headers={"Authorization": f"Bearer {token}"},
                    json=body or {},
                )
    except httpx.HTTPError as error:
        raise UnreachableError(
            f"cannot reach the service at {base}: {type(error).__name__}"
        ) from None
    try:
        document = response.json()
    except ValueError:
        document = {"detail": response.text[:200]}
    if response.status_code == 401:
        raise BadInputError(f"the service refused the token: {document.get('detail', '')}")
    if response.status_code in (400, 409, 422):
        raise BadInputError(f"the service refused {verb}: {document.get('detail', document)}")
    if response.status_code >= 500:
        raise UnreachableError(f"the service failed ({response.status_code}): {document}")
    return document


def control_command(args: argparse.Namespace) -> int:
    token = None if args.verb == "status" else _token(args.token_file)
    document = call_service(args.url, args.verb, token, args.timeout)
    if args.output == "json":
        print(json.dumps(document, indent=2))
    else:
        print(
            format_status(document)
            if args.verb == "status"
            else document.get("message", json.dumps(document))
        )
    return ExitCode.OK


def format_status(status: dict) -> str:
    """A few readable lines of ``/api/status``."""
    lines = [
        f"phase: {status.get('phase', '?')}"
        + (" (paused)" if status.get("paused") else "")
        + (f" — leader {status.get('leader')}" if status.get("leader") else ""),
    ]
    window = status.get("window") or {}
    if window:
        lines.append(
            "window: "
            + (
                "open" + (f" until {window['closes_at']}" if window.get("closes_at") else "")
                if window.get("open")
                else f"closed, opens {window.get('opens_at')}"
            )
        )
    upgrade = status.get("upgrade")
    if upgrade:
        lines.append(
            f"upgrade: tag {upgrade.get('tag')} {upgrade.get('from_revision')} → {upgrade.get('to_revision')}"
            f" ({upgrade.get('stage', '')}; {upgrade.get('namespaces_done', 0)}/{upgrade.get('namespaces_total', 0)} namespaces)"
        )
        for namespace in upgrade.get("namespaces", []):
            lines.append(
                f"  {namespace.get('name')}: {namespace.get('state')} {namespace.get('verdict') or ''}".rstrip()
            )
    if status.get("pending_request"):
        lines.append(f"pending request: {status['pending_request']}")
    for queued in status.get("queued_requests") or []:
        lines.append(
            f"queued for the leader: {queued.get('verb')} (via {queued.get('via')} at {queued.get('at')})"
        )
    if status.get("message"):
        lines.append(status["message"])
    return "\n".join(lines)
