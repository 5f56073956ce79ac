"""The only code that talks to the Kubernetes API."""

from taskstore_operator.kube.api import Kube, KubeError, connect

__all__ = ["Kube", "KubeError", "connect"]
