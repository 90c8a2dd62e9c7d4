"""The ``status``, ``pause``, ``resume``, ``approve``, ``abort``, ``request-upgrade``,
``rollback`` and ``approve-prune`` verbs.

They talk to a running ``serve`` over HTTP. Control verbs send the bearer token from
``--token-file`` (or ``CANARY_SERVICE__TOKEN_FILE``); ``status`` needs none.
Exit codes: 0 done, or queued · 2 refused (bad token, nothing to approve, a standby that
could not queue the verb) · 4 service unreachable, or an answer that is not the service's
(a wrong ``--url``: HTML, a 404, JSON of another shape).

"Queued" (HTTP 202; the message reads ``queued for the leader <holder>: <verb>``, and
``--output json`` shows ``"queued": true`` and the request's ``id``): the replica that
answered is on standby; it recorded the verb in the state ConfigMap and the leader applies
it on its next pass (every ``tick_interval``), in order, through the same code as a verb
sent to it directly. If the leader then refuses it (e.g. approve with nothing held), the
refusal is in ``status``'s timeline and the leader's log; ``status`` lists the verbs still
waiting (``queued_requests``).

Who and why: control verbs send ``X-Canary-Actor`` (``--as``, else the OS user) and
``X-Canary-Reason`` (``--reason``); the service logs both with the verb, names them in the
verb's timeline note and in the alerts the verb leads to, and keeps them with a verb a
standby queues.

Inside the service's Pod (``kubectl exec``) the verbs need no flags but ``--reason``: the
chart sets ``CANARY_SERVICE__TOKEN_FILE``, and without ``CANARY_SERVICE__URL`` the default
URL is the local port of ``CANARY_SERVICE__LISTEN`` (which the chart sets too).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from analyzer.commands.common import add_output_flag, print_document, structured
from analyzer.errors import BadInputError, ExitCode, UnreachableError

DEFAULT_URL = "http://127.0.0.1:8080"

VERBS = {
    "status": "show the running service's plan, progress and last verdicts",
    "pause": "pause the running upgrade after the current step (nothing new starts)",
    "resume": "resume a paused upgrade",
    "approve": "let a held upgrade go on (accept an inconclusive verdict)",
    "abort": "stop the upgrade and roll back the namespaces already moved",
    "request-upgrade": "ask the running service to upgrade (it starts in its maintenance window)",
    "rollback": "roll a promoted upgrade back during its soak (tag back to the old revision, "
    "every moved workload restarted)",
    "approve-prune": "remove the old revision's control plane the service offered to prune "
    "(after the soak, when nothing uses it; use is checked again first)",
}

#: Phases after which nothing changes without a person: ``status --watch`` stops there.
TERMINAL_PHASES = ("done", "failed", "held")

#: What on-call can do next, per phase (docs/oncall.md explains each).
NEXT_ACTION = {
    "idle": "nothing to do; ask for an upgrade with `canary-analyzer request-upgrade "
    "--to-revision REV`",
    "waiting-window": "nothing; the upgrade starts when the maintenance window opens",
    "running": "nothing; it proceeds on its own (`canary-analyzer pause` stops it after the "
    "current step)",
    "paused": "`canary-analyzer resume` to go on, or `canary-analyzer abort` to roll back",
    "held": "decide: `canary-analyzer approve` (accept the thin evidence) or "
    "`canary-analyzer abort` (roll back); see docs/oncall.md#deciding-pause-approve-abort",
    "rolling-back": "nothing; the rollback completes on its own (CanaryAnalyzerRollbackFinished)",
    "done": "nothing; read the report",
    "standby": "nothing; this replica does not hold the Lease: the leader acts, and verbs "
    "sent here are queued for it",
    "shadow": "nothing; shadow mode judges restarts and acts on nothing (verbs are refused); "
    "compare its verdicts with what you saw",
    "failed": "read the reasons above and the report; check the cluster yourself "
    "(docs/oncall.md#checking-the-cluster-yourself)",
}


def register(subparsers) -> None:
    for verb, help_text in VERBS.items():
        parser = subparsers.add_parser(verb, help=help_text, description=help_text)
        parser.add_argument(
            "--url",
            default=default_url(os.environ),
            help="the service's base URL (default $CANARY_SERVICE__URL, else the local port "
            f"of $CANARY_SERVICE__LISTEN (in the service's Pod), else {DEFAULT_URL})",
        )
        if verb != "status":
            parser.add_argument(
                "--token-file",
                type=Path,
                default=os.environ.get("CANARY_SERVICE__TOKEN_FILE"),
                help="file holding the control token (default $CANARY_SERVICE__TOKEN_FILE)",
            )
            parser.add_argument(
                "--reason", help="why: logged by the service with the verb and who sent it"
            )
            parser.add_argument(
                "--as",
                dest="actor",
                metavar="WHO",
                help="who sends the verb (default: the OS user)",
            )
        if verb == "request-upgrade":
            _add_upgrade_flags(parser)
        if verb == "status":
            parser.add_argument(
                "-w",
                "--watch",
                action="store_true",
                help="refresh until the phase is done, failed or held (or Ctrl-C)",
            )
            parser.add_argument(
                "--interval",
                type=float,
                default=5.0,
                metavar="SECONDS",
                help="seconds between refreshes with --watch (default 5)",
            )
            parser.add_argument(
                "--max-refreshes",
                type=int,
                metavar="N",
                help="with --watch: stop after N refreshes (for scripts; default: no limit)",
            )
        add_output_flag(parser)
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
        parser.set_defaults(handler=control_command, verb=verb)


def default_url(environ: Mapping[str, str]) -> str:
    """``$CANARY_SERVICE__URL``; else, where ``serve`` is configured to listen (its Pod),
    ``http://127.0.0.1:<that port>``; else ``DEFAULT_URL``."""
    if environ.get("CANARY_SERVICE__URL"):
        return environ["CANARY_SERVICE__URL"]
    _, sep, port = environ.get("CANARY_SERVICE__LISTEN", "").rpartition(":")
    if sep and port.isdigit() and int(port) > 0:
        return f"http://127.0.0.1:{port}"
    return DEFAULT_URL


def _add_upgrade_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to-revision", required=True, metavar="REV", help="target revision")
    parser.add_argument(
        "--from-revision", metavar="REV", help="expected current revision of the tag"
    )
    parser.add_argument("--tag", help="revision tag to move (default: the service's setting)")
    parser.add_argument(
        "--namespaces", metavar="NS,NS", help="namespaces in upgrade order (default: all reached)"
    )


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


def actor(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Who sends a verb: ``--as``, else the OS user. Inside the service's Pod (``kubectl
    exec``: ``POD_NAME`` is set, ``USER`` is not) the OS user is the container's and names
    nobody, and kubectl passes no caller identity into the container; the verb then says
    it came through ``kubectl exec`` into that Pod, so the API server's audit log (who
    created ``pods/exec`` on it then) tells who. ``--as "$(kubectl auth whoami -o
    jsonpath='{.status.userInfo.username}')"`` names the Kubernetes user up front."""
    if explicit:
        return explicit
    environ = os.environ if environ is None else environ
    pod = environ.get("POD_NAME")
    if pod and not environ.get("USER"):
        return f"kubectl exec into {pod} (no --as)"
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the UID (containers)
        return f"uid-{os.getuid()}"


def _not_the_service(base: str, why: str) -> UnreachableError:
    return UnreachableError(
        f"{base} is not a canary-analyzer service ({why}); check --url or CANARY_SERVICE__URL"
    )


def call_service(
    url: str,
    verb: str,
    token: str | None,
    timeout: float,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    """One request to the service; maps failures to the contract's errors."""
    base = url.rstrip("/")
    path = "upgrade" if verb == "request-upgrade" else verb
    try:
        with httpx.Client(timeout=timeout) as http:
            if verb == "status":
                response = http.get(f"{base}/api/status")
            else:
                response = http.post(
                    f"{base}/api/{path}",
                    headers={"Authorization": f"Bearer {token}", **(headers or {})},
                    json=body or {},
                )
    except httpx.InvalidURL as error:
        raise BadInputError(f"--url {url!r} is not a URL: {error}") from None
    except httpx.UnsupportedProtocol:
        raise BadInputError(f"--url {url!r} must start with http:// or https://") from None
    except httpx.HTTPError as error:
        raise UnreachableError(
            f"cannot reach the service at {base}: {type(error).__name__}"
        ) from None
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.status_code == 404:
        raise _not_the_service(base, f"HTTP 404 for /api/{path}")
    if not isinstance(document, dict):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise _not_the_service(base, f"HTTP {response.status_code}, answer is {kind}, not JSON")
    detail = document.get("detail", "")
    if response.status_code == 401:
        raise BadInputError(f"the service refused the token: {detail}")
    if response.status_code in (400, 409, 422):
        raise BadInputError(f"the service refused {verb}: {_detail_text(detail)}")
    if response.status_code >= 400:
        raise UnreachableError(f"the service failed (HTTP {response.status_code}): {detail}")
    if verb == "status" and "phase" not in document:
        raise _not_the_service(base, "its JSON has no phase")
    return document


def _detail_text(detail: Any) -> str:
    """FastAPI's 422 details are a list of problems: one line each, never a Python repr."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)


def control_command(args: argparse.Namespace) -> int:
    if args.verb == "status":
        if args.watch:
            return watch_status(args)
        document = call_service(args.url, "status", None, args.timeout)
        _show(args, document)
        return ExitCode.OK
    token = _token(args.token_file)
    headers = {"X-Canary-Actor": actor(args.actor).encode("latin-1", "replace").decode("latin-1")}
    if args.reason:
        # headers are Latin-1 on the wire: anything else is replaced, never refused
        headers["X-Canary-Reason"] = " ".join(args.reason.split()).encode(
            "latin-1", "replace"
        ).decode("latin-1")
    body = None
    if args.verb == "request-upgrade":
        body = {"to_revision": args.to_revision}
        for key in ("from_revision", "tag"):
            if getattr(args, key):
                body[key] = getattr(args, key)
        if args.namespaces:
            body["namespaces"] = [n.strip() for n in args.namespaces.split(",") if n.strip()]
    document = call_service(args.url, args.verb, token, args.timeout, body, headers)
    if structured(args.output):
        print_document(document, args.output)
    else:
        print(document.get("message") or f"{args.verb}: done")
    return ExitCode.OK


def _show(args: argparse.Namespace, document: dict) -> None:
    if structured(args.output):
        print_document(document, args.output)
    else:
        print(format_status(document))


def watch_status(
    args: argparse.Namespace,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print the status every ``--interval`` seconds until a terminal phase (or Ctrl-C)."""
    refreshes = 0
    clear = sys.stdout.isatty() and not structured(args.output)
    while True:
        document = call_service(args.url, "status", None, args.timeout)
        if clear:
            print("\x1b[H\x1b[2J", end="")
        elif refreshes and not structured(args.output):
            print()
        if not structured(args.output):
            print(f"— {datetime.now().astimezone():%H:%M:%S} —")
        _show(args, document)
        sys.stdout.flush()
        refreshes += 1
        if document.get("phase") in TERMINAL_PHASES:
            return ExitCode.OK
        if args.max_refreshes is not None and refreshes >= args.max_refreshes:
            return ExitCode.OK
        try:
            sleep(max(args.interval, 0.1))
        except KeyboardInterrupt:
            return ExitCode.OK


def _request_text(request: Any) -> str:
    if not isinstance(request, dict):
        return str(request)
    parts = [f"to {request.get('to_revision', '?')}"]
    if request.get("from_revision"):
        parts.append(f"from {request['from_revision']}")
    if request.get("tag"):
        parts.append(f"tag {request['tag']}")
    if request.get("namespaces"):
        parts.append("namespaces " + ", ".join(map(str, request["namespaces"])))
    if request.get("reason") or request.get("detail"):
        parts.append(f"({request.get('reason') or request.get('detail')})")
    return "upgrade " + " ".join(parts)


def _rule_lines(rules: Any, indent: str) -> list[str]:
    lines = []
    for rule in rules or []:
        if not isinstance(rule, dict) or rule.get("verdict") in (None, "pass"):
            continue
        lines.append(f"{indent}{rule.get('verdict')}: {rule.get('rule')} — {rule.get('reason')}")
    return lines


def format_status(status: dict) -> str:
    """Readable lines of ``/api/status``: where, phase, window, plan, reasons, what next."""
    phase = str(status.get("phase") or "unknown")
    lines = []
    target = status.get("kubernetes")
    if isinstance(target, dict):
        lines.append(f"cluster: {target.get('cluster')} (context {target.get('context')})")
    lines.append(
        f"phase: {phase}"
        + (" (paused)" if status.get("paused") else "")
        + (f" — leader {status.get('leader')}" if status.get("leader") else "")
    )
    window = status.get("window") or {}
    if isinstance(window, dict) and window:
        lines.append(
            "window: "
            + (
                "open" + (f" until {window['closes_at']}" if window.get("closes_at") else "")
                if window.get("open")
                else f"closed, opens {window.get('opens_at')}"
            )
        )
    upgrade = status.get("upgrade")
    if isinstance(upgrade, dict):
        lines.append(
            f"upgrade: tag {upgrade.get('tag')} {upgrade.get('from_revision')} → "
            f"{upgrade.get('to_revision')} ({upgrade.get('stage', '')}; "
            f"{upgrade.get('namespaces_done', 0)}/{upgrade.get('namespaces_total', 0)} "
            "namespaces)"
        )
        if upgrade.get("reason"):
            lines.append(f"  reason: {upgrade['reason']}")
        for namespace in upgrade.get("namespaces") or []:
            if not isinstance(namespace, dict):
                continue
            verdict = f" {namespace['verdict']}" if namespace.get("verdict") else ""
            reason = f" — {namespace['reason']}" if namespace.get("reason") else ""
            lines.append(f"  {namespace.get('name')}: {namespace.get('state')}{verdict}{reason}")
            lines += _rule_lines(namespace.get("rules"), "      ")
    soak = status.get("soak")
    if isinstance(soak, dict):
        lines.append(
            f"soak: {soak.get('state')} until {soak.get('ends')} ({soak.get('looks', 0)} looks"
            + (f", next {soak['next_look']}" if soak.get("next_look") else "") + ")"
        )
        if soak.get("regression"):
            lines.append(f"  regression: {soak.get('detail')}")
            lines.append("  offered: `canary-analyzer rollback --reason ...`")
    shadow = status.get("shadow")
    if status.get("mode") == "shadow" and isinstance(shadow, dict):
        lines.append("SHADOW MODE: judges restarts others make; moves no tag, restarts "
                     "nothing, pages nobody")  # fmt: skip
        for item in (shadow.get("pending") or [])[:10]:
            if isinstance(item, dict):
                lines.append(f"  waiting: {item.get('namespace')} restarted "
                             f"{item.get('restarted_at')}, judged after {item.get('due')}")  # fmt: skip
        for item in (shadow.get("verdicts") or [])[:10]:
            if isinstance(item, dict):
                would = f" (an upgrade {item['would']})" if item.get("would") else ""
                lines.append(f"  {item.get('namespace')} restarted {item.get('restarted_at')}: "
                             f"{str(item.get('verdict')).upper()} — {item.get('reason')}{would}")  # fmt: skip
    if status.get("pending_request"):
        lines.append(f"pending request: {_request_text(status['pending_request'])}")
    if status.get("refused_request"):
        lines.append(f"refused request: {_request_text(status['refused_request'])}")
    for queued in status.get("queued_requests") or []:
        if isinstance(queued, dict):
            lines.append(
                f"queued for the leader: {queued.get('verb')} "
                f"(via {queued.get('via')} at {queued.get('at')})"
            )
    prune = status.get("prune")
    if isinstance(prune, dict):
        detail = "; ".join(map(str, prune.get("blockers") or [])) or prune.get("detail")
        lines.append(
            f"after the upgrade: prune of {prune.get('revision')} {prune.get('state')}"
            + (f" (soak ends {prune.get('soak_ends')})" if prune.get("state") == "soaking" else "")
            + (f" — {detail}" if detail else "")
        )
    if status.get("message"):
        lines.append(str(status["message"]))
    lines.append(f"next: {NEXT_ACTION.get(phase, 'see docs/oncall.md')}")
    return "\n".join(lines)

