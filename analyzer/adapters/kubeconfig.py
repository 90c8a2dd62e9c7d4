"""Which cluster and context the product talks to, read as kubectl reads it.

Why it exists: an operator with several clusters must see, before anything is written,
which cluster a command acts on (``--context`` as in kubectl), and a broken kubeconfig must
be a bad-input error naming the file, not an internal error from the YAML parser. The
official client does the loading (``kubernetes.config.load_kube_config``, with its
``context`` argument); this module only names the result and maps its failures.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.config.config_exception import ConfigException

from analyzer.errors import BadInputError
from analyzer.settings import KubernetesSettings

IN_CLUSTER = "in-cluster"


class KubeconfigError(BadInputError):
    """The kubeconfig file is unreadable, malformed, or lacks the asked context."""


@dataclass(frozen=True)
class KubeTarget:
    """The cluster a command acts on: kubeconfig context, its cluster's name, API server."""

    context: str
    cluster: str
    server: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def line(self) -> str:
        return f"cluster {self.cluster} (context {self.context}, {self.server})"


def _kubeconfig_path(settings: KubernetesSettings) -> Path | None:
    if settings.kubeconfig:
        return Path(settings.kubeconfig)
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    if first:
        return Path(first)
    default = Path.home() / ".kube" / "config"
    return default if default.exists() else None


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _target_from_file(path: Path, context: str | None) -> KubeTarget:
    contexts, current = kube_config.list_kube_config_contexts(config_file=str(path))
    names = [entry.get("name") for entry in contexts or []]
    chosen = context or (current or {}).get("name")
    if chosen not in names:
        listed = ", ".join(str(name) for name in names) or "none"
        raise KubeconfigError(f"kubeconfig {path}: no context {chosen!r} (contexts: {listed})")
    entry = next(entry for entry in contexts if entry.get("name") == chosen)
    cluster = str((entry.get("context") or {}).get("cluster") or "")
    return KubeTarget(context=str(chosen), cluster=cluster, server="")


def load(settings: KubernetesSettings) -> tuple[kube.Configuration, KubeTarget]:
    """The client configuration and what it points at; ``KubeconfigError`` names the file.

    Without a kubeconfig setting: in a Pod, the ServiceAccount's in-cluster configuration;
    else ``$KUBECONFIG`` or ``~/.kube/config`` as kubectl does.
    """
    configuration = kube.Configuration()
    path = None if (not settings.kubeconfig and _in_cluster()) else _kubeconfig_path(settings)
    if path is None:
        if settings.context:
            raise KubeconfigError(
                f"--context {settings.context}: no kubeconfig (set --kubeconfig or $KUBECONFIG)"
            )
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as error:
            raise KubeconfigError(f"no usable Kubernetes configuration: {error}") from None
        target = KubeTarget(IN_CLUSTER, IN_CLUSTER, configuration.host)
        return configuration, target
    try:
        target = _target_from_file(path, settings.context)
        kube_config.load_kube_config(
            config_file=str(path), context=target.context, client_configuration=configuration
        )
    except KubeconfigError:
        raise
    except OSError as error:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise KubeconfigError(f"kubeconfig {path}{where} is not valid YAML: {problem}") from None
    except (ConfigException, AttributeError, TypeError, KeyError, ValueError) as error:
        raise KubeconfigError(f"kubeconfig {path} is not usable: {error}") from None
    server = configuration.host or ""
    return configuration, KubeTarget(
        target.context, target.cluster or urlsplit(server).hostname or server, server
    )
