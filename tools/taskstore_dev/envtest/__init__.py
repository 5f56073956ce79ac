"""A real Kubernetes control plane for tests and the demo, like controller-runtime's envtest.

``binaries`` builds and caches kube-apiserver, kube-controller-manager, kubectl, etcd and
helm from the pinned Go modules in ``scripts/testbins``; ``controlplane`` starts and stops
them; ``pytest_plugin`` offers them as fixtures. See docs/control-plane.md.
"""

from .binaries import (
    Binaries,
    BinariesError,
    BuildError,
    GoNotFoundError,
    build_binaries,
    find_binaries,
    read_pins,
)
from .controlplane import ControlPlane, ControlPlaneError

__all__ = [
    "Binaries",
    "BinariesError",
    "BuildError",
    "ControlPlane",
    "ControlPlaneError",
    "GoNotFoundError",
    "build_binaries",
    "find_binaries",
    "read_pins",
]
