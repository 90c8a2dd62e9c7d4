"""What ``revisions`` and ``prune`` do once parsed (see analyzer/commands/revisions.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from analyzer.adapters.istio_revisions import IstioRevisions
from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.commands.common import print_document, settings_from_args, structured
from analyzer.core.ports import ClusterError, ClusterNotFoundError, ClusterUnreachableError
from analyzer.core.revisions import PrunePlan, RevisionUse, inventory, unused, use_json
from analyzer.errors import BadInputError, ExitCode, UnreachableError
from analyzer.service.soak import NotInstalledError, run_prune


@contextmanager
def _revisions(args: argparse.Namespace) -> Iterator[IstioRevisions]:
    settings = settings_from_args(args)
    namespace = getattr(args, "istio_namespace", None) or settings.upgrade.istio_namespace
    try:
        cluster = KubernetesCluster.from_settings(settings.kubernetes, namespace)
    except ClusterNotFoundError as error:
        raise BadInputError(str(error)) from None
    try:
        yield IstioRevisions(cluster, namespace)
    except ClusterUnreachableError as error:
        raise UnreachableError(f"cluster unreachable: {error}") from None
    except ClusterError as error:
        raise BadInputError(f"cluster refused: {error}") from None
    finally:
        cluster.close()


def _text(use: RevisionUse) -> list[str]:
    installed = "; ".join(
        [f"istiod {i.describe()}" for i in use.istiods]
        + [f"injector {name}" for name in use.injectors]) or "not installed"
    controlled = sum(1 for pod in use.pods if pod.controlled)
    lines = [f"revision {use.revision}: {installed}",
             f"  tags: {', '.join(use.tags) or '-'}",
             f"  running pods: {len(use.pods)} ({controlled} of workloads, "
             f"{len(use.pods) - controlled} Job or bare); not use: {len(use.completed)} "
             f"completed, {len(use.failed)} failed",
             f"  namespaces labelled with it: {', '.join(use.namespaces) or '-'}",
             f"  namespaces through its tags: {', '.join(use.namespaces_via_tags) or '-'}",
             f"  pinned: {', '.join(w.describe() for w in use.workloads) or '-'}"]
    lines.append("  in use" if use.in_use else "  unused")
    return lines


def revisions_command(args: argparse.Namespace) -> int:
    with _revisions(args) as adapter:
        report = inventory(adapter.inputs())
    checked = None if args.revision is None else unused(report, args.revision)
    if structured(args.output):
        body: dict[str, Any] = {"revisions": [use_json(u) for u in report.values()]}
        if args.revision is not None:
            body["checked"] = {"revision": args.revision, "unused": checked}
        print_document(body, args.output)
    else:
        for use in report.values():
            print("\n".join(_text(use)))
        if args.revision is not None:
            state = "unused" if checked else "in use"
            present = "" if args.revision in report else " (not found in the cluster)"
            print(f"revision {args.revision}: {state}{present}")
    return int(ExitCode.OK if checked in (None, True) else ExitCode.REGRESSION)


def plan_json(plan: PrunePlan, deleted: list[str] | None, dry_run: bool) -> dict[str, Any]:
    return {
        "revision": plan.revision,
        "dry_run": dry_run,
        "may_proceed": plan.may_proceed,
        "refusal": plan.refusal(),
        "blockers": list(plan.blockers),
        "helm_releases": [{"name": r.name, "namespace": r.namespace, "command": r.command()}
                          for r in plan.helm_releases],
        "to_delete": [o.describe() for o in plan.delete],
        "left_alone": [{"object": o.describe(), "why": why} for o, why in plan.left_alone],
        "deleted": deleted,
    }


def prune_command(args: argparse.Namespace) -> int:
    revision = args.revision
    say: Callable[[str], None] = print if args.output == "text" else (lambda _text: None)
    with _revisions(args) as adapter:
        try:
            plan, deleted = run_prune(adapter, revision, args.dry_run, say)
        except NotInstalledError as error:
            raise BadInputError(str(error)) from None
    refusal = plan.refusal()
    if structured(args.output):
        print_document(plan_json(plan, deleted, args.dry_run), args.output)
    elif refusal is not None:
        print(refusal)
    elif args.dry_run:
        print(f"revision {revision}: nothing uses it; would delete:")
        for obj in plan.delete:
            print(f"  {obj.describe()}")
    for obj, why in plan.left_alone:
        say(f"left alone: {obj.describe()}: {why}")
    if plan.blockers:
        return int(ExitCode.REGRESSION)
    if plan.helm_releases:
        return int(ExitCode.INCONCLUSIVE)
    if refusal is not None:
        return int(ExitCode.BAD_INPUT)
    return int(ExitCode.OK)
