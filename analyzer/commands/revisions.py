"""The ``revisions`` and ``prune`` subcommands: what uses each control-plane revision, and
removing an unused one as ``istioctl uninstall --revision`` does.

Exit codes (additive to docs/cli.md): ``revisions``: 0 listed (with ``--revision R``: R is
unused) · 1 R is still in use · 2 bad input · 4 cluster unreachable. ``prune``: 0 deleted
(``--dry-run``: would delete) · 1 refused, the revision is still in use (every use named) ·
2 bad input (revision not installed, the cluster refused) · 3 held: a Helm release owns the
revision (``helm uninstall`` it; the release is named) · 4 cluster unreachable.
"""

from __future__ import annotations

from analyzer.commands.common import add_kubeconfig_flag, add_output_flag, lazy_handler


def _istio_namespace_flag(parser) -> None:
    parser.add_argument(
        "--istio-namespace",
        metavar="NS",
        help="namespace of the istiod Deployments and their objects (default: settings, "
        "istio-system)",
    )


def register(subparsers) -> None:
    """Add ``revisions`` and ``prune`` to the command line."""
    parser = subparsers.add_parser(
        "revisions",
        help="list every installed revision and what still uses it, cluster-wide",
        description="Every control-plane revision (istiod Deployments, injector webhooks, "
        "tags) and what uses each across the cluster: running pods by proxy revision "
        "(workload-owned apart from Job and bare pods; completed and failed pods counted "
        "apart, not as use), namespaces labelled with it, tags pointing at it, workloads and "
        "gateways pinned to it. With --revision R: exit 0 when R is unused, 1 when in use.",
    )
    parser.add_argument("--revision", metavar="REV", help="exit 0 only if REV is unused")
    add_output_flag(parser)
    _istio_namespace_flag(parser)
    add_kubeconfig_flag(parser)
    parser.set_defaults(handler=lazy_handler("analyzer.commands._revisions", "revisions_command"))

    parser = subparsers.add_parser(
        "prune",
        help="remove an unused revision's control plane (as istioctl uninstall --revision)",
        description="Check right before that nothing uses the revision, then delete its "
        "webhooks, istiod Deployment, Service, HPA, PodDisruptionBudget, ConfigMaps, "
        "ServiceAccount and RBAC (objects istioctl installed, labelled istio.io/rev=REV) with "
        "propagationPolicy Foreground. A revision installed by Helm is not deleted: the "
        "release to helm uninstall is named. Exit 0 deleted, 1 in use, 2 bad input, "
        "3 Helm-owned, 4 cluster unreachable.",
    )
    parser.add_argument("--revision", required=True, metavar="REV", help="revision to remove")
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; delete nothing"
    )
    add_output_flag(parser)
    _istio_namespace_flag(parser)
    add_kubeconfig_flag(parser)
    parser.set_defaults(handler=lazy_handler("analyzer.commands._revisions", "prune_command"))
