"""The ``serve`` subcommand: the long-running service (windows, lease, alerts, HTTP).

Wires real adapters into ``service.service.UpgradeService``, runs its loop under apscheduler
and serves HTTP until SIGTERM/SIGINT, then stops gracefully: the current action finishes,
the state is persisted, the lease is released. Prints ``serving http://HOST:PORT`` (the bound
port, also for ``--listen 127.0.0.1:0``) once the HTTP interface is up.
"""

from __future__ import annotations

from analyzer.commands.common import add_common_flags, add_notification_flags, lazy_handler


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="the long-running service: unattended upgrades in maintenance windows",
        description="Run upgrades unattended inside maintenance windows, page on-call, and "
        "serve /healthz, /readyz, /metrics, /api/status and the control endpoints "
        "(/api/pause, /api/resume, /api/approve, /api/abort, /api/upgrade need "
        "'Authorization: Bearer <token>'). Stops gracefully on SIGTERM.",
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="HTTP address (default 127.0.0.1:8080)"
    )
    parser.add_argument("--token-file", metavar="PATH", help="file holding the control token")
    parser.add_argument(
        "--window-cron",
        metavar="CRON",
        help='maintenance window start, e.g. "0 1 * * *" (default: always open)',
    )
    parser.add_argument(
        "--window-duration", metavar="DURATION", help="maintenance window length (default 4h)"
    )
    parser.add_argument("--timezone", metavar="TZ", help="timezone of --window-cron (default UTC)")
    parser.add_argument(
        "--to-revision", metavar="REV", help="declare a pending upgrade to this revision"
    )
    parser.add_argument(
        "--from-revision", metavar="REV", help="expected current revision of the tag"
    )
    parser.add_argument(
        "--detect-upgrades",
        action="store_true",
        default=None,
        help="start on its own when a newer istiod revision is ready (opt-in)",
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        default=None,
        help="judge-only (service.mode: shadow): watch restarts that happen anyway, judge and "
        "record them; move no tag, restart nothing, page nobody, write nothing to the cluster",
    )
    add_notification_flags(parser)
    add_common_flags(parser)
    parser.set_defaults(handler=lazy_handler("analyzer.commands._serve", "serve_command"))
