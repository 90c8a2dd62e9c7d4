"""Flags shared by ``analyze``, ``upgrade`` and ``serve``, and how they override settings.

Precedence: command-line flag > ``CANARY_*`` environment variable > default.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from datetime import datetime
from pathlib import Path

from analyzer.adapters.rule_files import default_rules_path, load_rules
from analyzer.core.durations import DurationError, parse_duration
from analyzer.core.rules import RuleFileError, RuleSet
from analyzer.errors import BadInputError
from analyzer.settings import Settings, load_settings


def lazy_handler(module: str, function: str):
    """A handler that imports its implementation only when the command runs, so
    ``--help`` and the light verbs start fast."""

    def handler(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), function)(args)

    return handler


OUTPUT_FORMATS = ("text", "json", "yaml")


def add_output_flag(parser: argparse.ArgumentParser, help_text: str = "output format") -> None:
    """``-o``/``--output text|json|yaml``, as kubectl and helm spell it."""
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default="text",
        help=f"{help_text}: text, json or yaml (default text)",
    )


def structured(output: str) -> bool:
    """Whether ``--output`` asks for a document (JSON or YAML) instead of text."""
    return output in ("json", "yaml")


def print_document(document: object, output: str) -> None:
    """Print a JSON-able document as JSON or YAML (the same fields either way)."""
    text = json.dumps(document, indent=2, default=str)
    if output == "yaml":
        import yaml

        text = yaml.safe_dump(json.loads(text), sort_keys=False, allow_unicode=True).rstrip()
    print(text)


def _duration(text: str):
    try:
        return parse_duration(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_window_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("windows (durations like 30s, 10m, 1h)")
    group.add_argument("--before", type=_duration, help="window before the restart (default 10m)")
    group.add_argument(
        "--settle", type=_duration, help="time skipped after the restart (default 2m)"
    )
    group.add_argument("--after", type=_duration, help="window after settling (default 10m)")
    group.add_argument("--step", type=_duration, help="query resolution (default 1m)")


def share(text: str) -> float:
    """An argparse type: a share strictly between 0 and 1 (0.05 for 5 %)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (e.g. 0.05 for 5%)") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and rules")
    group.add_argument(
        "--prometheus-url", metavar="URL", help="PromQL API base URL (with any path prefix)"
    )
    group.add_argument(
        "--rules",
        metavar="DIR",
        type=Path,
        help="rule files directory (default ./rules, else the packaged defaults)",
    )
    group.add_argument(
        "--night-budget",
        metavar="SHARE",
        type=share,
        help="accepted chance of any false rollback in the whole upgrade, e.g. 0.05, split "
        "over every namespace × critical rule judged (default: each rule's own confidence)",
    )


def add_kubeconfig_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        type=Path,
        help="kubeconfig file (default $KUBECONFIG, else in-cluster)",
    )
    parser.add_argument(
        "--context",
        metavar="NAME",
        help="kubeconfig context, as kubectl --context (default: the current context)",
    )


def add_notification_flags(parser: argparse.ArgumentParser) -> None:
    """Where pages go (``upgrade`` and ``serve`` alike)."""
    group = parser.add_argument_group("alerts to on-call")
    group.add_argument("--alertmanager-url", metavar="URL", help="Alertmanager (v2 API) for pages")
    group.add_argument(
        "--webhook-url", metavar="URL", help="webhook (Slack-compatible JSON) for pages"
    )


def add_common_flags(parser: argparse.ArgumentParser, kubernetes: bool = True) -> None:
    """The flags docs/cli.md promises on analyze, upgrade and serve."""
    add_window_flags(parser)
    add_source_flags(parser)
    if kubernetes:
        add_kubeconfig_flag(parser)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by whichever flags were given."""
    settings = load_settings()
    windows = settings.windows.model_copy(
        update={
            name: getattr(args, name)
            for name in ("before", "settle", "after", "step")
            if getattr(args, name, None) is not None
        }
    )
    prometheus = settings.prometheus
    if getattr(args, "prometheus_url", None):
        prometheus = prometheus.model_copy(update={"url": args.prometheus_url})
    rules = settings.rules
    if getattr(args, "rules", None):
        rules = rules.model_copy(update={"directory": args.rules})
    if getattr(args, "night_budget", None) is not None:
        rules = rules.model_copy(update={"night_budget": args.night_budget})
    kubernetes = settings.kubernetes
    kubeconfig = getattr(args, "kubeconfig", None) or (
        Path(os.environ["KUBECONFIG"])
        if os.environ.get("KUBECONFIG") and not kubernetes.kubeconfig
        else None
    )
    if kubeconfig:
        kubernetes = kubernetes.model_copy(update={"kubeconfig": kubeconfig})
    if getattr(args, "context", None):
        kubernetes = kubernetes.model_copy(update={"context": args.context})
    notifications = settings.notifications.model_copy(
        update={
            name: getattr(args, name)
            for name in ("alertmanager_url", "webhook_url")
            if getattr(args, name, None)
        }
    )
    return settings.model_copy(
        update={
            "windows": windows,
            "prometheus": prometheus,
            "rules": rules,
            "kubernetes": kubernetes,
            "notifications": notifications,
        }
    )


def load_rule_set(settings: Settings) -> RuleSet:
    """The rules in force, or ``BadInputError`` listing every problem with file and line."""
    try:
        return load_rules([default_rules_path(settings.rules.directory)])
    except RuleFileError as error:
        raise BadInputError(f"invalid rules:\n{error}") from None


def parse_time(text: str) -> datetime:
    """ISO 8601 with a timezone (``Z`` accepted); naive times are refused as ambiguous."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInputError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-27T01:30:00Z)") from None
    if moment.tzinfo is None:
        raise BadInputError(f"time {text!r} has no timezone; add Z or an offset such as +01:00")
    return moment
