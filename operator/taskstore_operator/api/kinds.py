"""Every Kubernetes kind the operator touches, with the access it needs: the one table.

The watches, the object references and the REST paths take group, version and plural
from here; the RBAC rules of the chart (``templates/_rules.tpl``), the plain manifests
and the RBAC table of docs/install.md are generated from it (``make generate``). A kind
or a verb the operator starts to use is added here, with the reason, and nowhere else.
"""

from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

from taskstore_operator.api.contract import GROUP, KIND, PLURAL, VERSION


class Grant(Enum):
    """Where the chart grants a kind's verbs."""

    # In every namespace the operator serves: its ClusterRole, or a Role per namespace.
    SERVED_NAMESPACES = "served namespaces"
    # Cluster-wide, whichever namespaces are served (kopf's own observers).
    CLUSTER = "cluster"
    # Cluster-wide, only when the operator serves a list of namespaces.
    CLUSTER_WHEN_NAMESPACED = "cluster, watchNamespaces set"
    # In the ClusterRole, only when the operator serves every namespace.
    CLUSTER_WHEN_CLUSTER_WIDE = "cluster, all namespaces served"
    # In each watched namespace's Role, only when the operator serves a list of namespaces.
    NAMESPACES_WHEN_NAMESPACED = "each watched namespace, watchNamespaces set"


@dataclass(frozen=True)
class Kind:
    """A Kubernetes kind (or subresource), its coordinates and the verbs the operator holds."""

    group: str  # "" is the core group
    version: str
    kind: str
    plural: str
    verbs: tuple[str, ...]
    why: str  # one line: why the operator needs these verbs
    grant: Grant = Grant.SERVED_NAMESPACES
    subresource: str = ""
    # Verbs granted on the one object named by the chart's peering name, never on all.
    named_verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of an object of this kind: ``v1`` or ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The resource an RBAC rule names: the plural, with ``/subresource`` if any."""
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural


# Verbs of the objects the operator creates and owns: applied, and deleted when not wanted.
_OWNED: Final = ("get", "list", "watch", "create", "patch", "delete")

TASKSTORE: Final = Kind(
    GROUP,
    VERSION,
    KIND,
    PLURAL,
    ("get", "list", "watch", "patch"),
    "watched; read on each reconcile; the finalizer of earlier versions is removed by "
    "server-side apply (the operator adds none)",
)
TASKSTORE_STATUS: Final = Kind(
    GROUP,
    VERSION,
    KIND,
    PLURAL,
    ("patch",),
    "status is written by server-side apply",
    subresource="status",
)
DEPLOYMENT: Final = Kind(
    "apps",
    "v1",
    "Deployment",
    "deployments",
    ("get", "list", "watch", "patch"),
    "agents are found by their label; the environment is server-side applied "
    "(never created, never deleted)",
)
CONFIG_MAP: Final = Kind(
    "",
    "v1",
    "ConfigMap",
    "configmaps",
    _OWNED,
    "the managed Redis' configuration: created by apply, deleted when no longer asked for",
)
SERVICE: Final = Kind(
    "",
    "v1",
    "Service",
    "services",
    _OWNED,
    "the managed Redis' Service: created by apply, deleted when no longer asked for",
)
STATEFUL_SET: Final = Kind(
    "apps",
    "v1",
    "StatefulSet",
    "statefulsets",
    _OWNED,
    "the managed Redis: created by apply, deleted when no longer asked for",
)
NETWORK_POLICY: Final = Kind(
    "networking.k8s.io",
    "v1",
    "NetworkPolicy",
    "networkpolicies",
    _OWNED,
    "the managed Redis' NetworkPolicy: created by apply, deleted when no longer asked for",
)
SECRET: Final = Kind(
    "",
    "v1",
    "Secret",
    "secrets",
    ("get", "create", "delete"),
    "only the Secrets the stores name are read, by name: the generated password Secret "
    "(created once, never updated; deleted and created again with the same password when "
    "its key was renamed) and an external store's `passwordSecretRef`. Secrets are never "
    "listed or watched: the operator reads them on each reconcile and every "
    "`--secret-check-seconds`",
)
EVENT: Final = Kind(
    "",
    "v1",
    "Event",
    "events",
    ("create",),
    "Events on TaskStores and Deployments",
)
CUSTOM_RESOURCE_DEFINITION: Final = Kind(
    "apiextensions.k8s.io",
    "v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    ("list", "watch"),
    "kopf's resource observer: it notices the TaskStore CRD even when it is installed after "
    "the operator starts",
    grant=Grant.CLUSTER,
)
NAMESPACE: Final = Kind(
    "",
    "v1",
    "Namespace",
    "namespaces",
    ("get", "list", "watch"),
    "kopf's namespace observer lists them to find the watched ones; `get` is for a start-up "
    "check that each watched namespace exists",
    grant=Grant.CLUSTER_WHEN_NAMESPACED,
)
CLUSTER_KOPF_PEERING: Final = Kind(
    "kopf.dev",
    "v1",
    "ClusterKopfPeering",
    "clusterkopfpeerings",
    ("list", "watch", "create"),
    "kopf peering (always on): one replica works, the others wait; the operator creates its "
    "peering object when missing (the plain manifests cannot hold it)",
    grant=Grant.CLUSTER_WHEN_CLUSTER_WIDE,
    named_verbs=("patch",),
)
KOPF_PEERING: Final = Kind(
    "kopf.dev",
    "v1",
    "KopfPeering",
    "kopfpeerings",
    ("list", "watch", "create"),
    "kopf peering (always on): one replica works, the others wait; the operator creates its "
    "peering object when missing (the plain manifests cannot hold it)",
    grant=Grant.NAMESPACES_WHEN_NAMESPACED,
    named_verbs=("patch",),
)
# The start-up check: an operator stands by while another install serves its namespaces,
# which it learns from the other scope's peering objects.
OTHER_KOPF_PEERINGS: Final = replace(
    KOPF_PEERING,
    verbs=("list",),
    named_verbs=(),
    why="the start-up check: namespaced installs' peerings, in any namespace",
    grant=Grant.CLUSTER_WHEN_CLUSTER_WIDE,
)
OTHER_CLUSTER_KOPF_PEERINGS: Final = replace(
    CLUSTER_KOPF_PEERING,
    verbs=("list",),
    named_verbs=(),
    why="the start-up check: cluster-wide installs' peerings",
    grant=Grant.CLUSTER_WHEN_NAMESPACED,
)

# Every kind the operator touches, in the order of the RBAC rules and the docs table.
KINDS: Final = (
    TASKSTORE,
    TASKSTORE_STATUS,
    DEPLOYMENT,
    CONFIG_MAP,
    SERVICE,
    STATEFUL_SET,
    NETWORK_POLICY,
    SECRET,
    EVENT,
    CUSTOM_RESOURCE_DEFINITION,
    NAMESPACE,
    CLUSTER_KOPF_PEERING,
    OTHER_KOPF_PEERINGS,
    KOPF_PEERING,
    OTHER_CLUSTER_KOPF_PEERINGS,
)
# The objects of a managed Redis that the operator applies and labels.
MANAGED_KINDS: Final = (SECRET, CONFIG_MAP, SERVICE, NETWORK_POLICY, STATEFUL_SET)
# Those it watches (by their label), for drift and readiness: Secrets are read by name only
# (see taskstore_operator.runtime.password_secrets).
WATCHED_MANAGED_KINDS: Final = tuple(kind for kind in MANAGED_KINDS if kind is not SECRET)
# Each kind by its ``kind`` name (TaskStore: the object, not its status subresource; a kind
# listed twice for two grants has the same coordinates in both).
BY_KIND: Final = {k.kind: k for k in KINDS if not k.subresource}
