"""Other TaskStore operators whose scope overlaps this one's: found at start-up, waited out.

kopf's peering keeps the replicas of one install apart, but only those that share a peering
object: a cluster-wide operator records itself in a ClusterKopfPeering, a namespaced one in a
KopfPeering per namespace. Two installs with different peering objects over the same
namespace (a cluster-wide and a namespaced one, or two releases) would both work and double
every write and Event. Every install's peering objects carry :data:`PEERING_LABEL`, so an
operator starting up can see the live peers of the other installs: when one serves a
namespace this operator would serve, it says so and stands by until that peer is gone.

kopf needs its peering object to exist before it can join it; :meth:`PeeringApi.ensure`
creates a missing one (the chart renders them; the plain manifests and a local run rely on
this).

:func:`overlapping_peers` is pure; :class:`PeeringApi` reads and creates peering objects.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

# The label of the peering objects of every TaskStore operator install (the chart sets it).
PEERING_LABEL: Final = "tealagents.io/taskstore-operator-peering"
PEERING_GROUP: Final = "kopf.dev"
PEERING_VERSION: Final = "v1"
CLUSTER_PEERINGS: Final = "clusterkopfpeerings"
NAMESPACED_PEERINGS: Final = "kopfpeerings"
# kopf treats a record without a lifetime as valid for 60 seconds.
DEFAULT_PEER_LIFETIME: Final = 60
STANDBY_POLL_SECONDS: Final = 10.0

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """What an operator serves: every namespace (``namespaces`` empty), or those named."""

    namespaces: tuple[str, ...]
    # The peering object this operator joins through kopf; None when it runs standalone.
    peering: str | None

    @property
    def clusterwide(self) -> bool:
        """Whether the operator serves every namespace."""
        return not self.namespaces

    def describe(self) -> str:
        """Its scope in words, for logs."""
        return "every namespace" if self.clusterwide else ", ".join(self.namespaces)


@dataclass(frozen=True)
class ForeignPeer:
    """A live operator of another install whose scope overlaps ours."""

    identity: str
    peering: str
    # The namespace of its KopfPeering; None for a ClusterKopfPeering (a cluster-wide one).
    namespace: str | None

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.identity} (ClusterKopfPeering {self.peering})"
        return f"{self.identity} (KopfPeering {self.namespace}/{self.peering})"


def _live_identities(peering: Mapping[str, Any], now: datetime) -> Iterable[str]:
    """The identities recorded in a kopf peering object whose records have not expired."""
    for identity, record in (peering.get("status") or {}).items():
        if not isinstance(record, Mapping):
            continue
        try:
            seen = datetime.fromisoformat(str(record["lastseen"]))
            lifetime = timedelta(seconds=int(record.get("lifetime", DEFAULT_PEER_LIFETIME)))
        except (KeyError, TypeError, ValueError):
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        if seen + lifetime > now:
            yield identity


def overlapping_peers(
    scope: Scope,
    cluster_peerings: Sequence[Manifest],
    namespaced_peerings: Sequence[Manifest],
    own_identity: str | None,
    now: datetime,
) -> list[ForeignPeer]:
    """The live peers of other installs that serve a namespace ``scope`` serves.

    A ClusterKopfPeering's peers serve every namespace; a KopfPeering's serve its namespace.
    Peers in this operator's own peering object are kopf's business, and are left out.
    """
    found = []
    for peering in cluster_peerings:
        name = peering["metadata"]["name"]
        if scope.clusterwide and name == scope.peering:
            continue
        found += [ForeignPeer(i, name, None) for i in _live_identities(peering, now)]
    for peering in namespaced_peerings:
        name, namespace = peering["metadata"]["name"], peering["metadata"]["namespace"]
        if not scope.clusterwide and (namespace not in scope.namespaces or name == scope.peering):
            continue
        found += [ForeignPeer(i, name, namespace) for i in _live_identities(peering, now)]
    return sorted(
        (peer for peer in found if peer.identity != own_identity),
        key=lambda peer: (peer.namespace or "", peer.peering, peer.identity),
    )


class PeeringApi:
    """Reads the labelled peering objects a scope can overlap with; creates this one's."""

    def __init__(self, client: ApiClient) -> None:
        self._api = CustomObjectsApi(client)

    def ensure(self, scope: Scope) -> None:
        """Create the scope's own peering object(s) if missing; say so when that fails."""
        if scope.peering is None:
            return
        body = {
            "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
            "metadata": {"name": scope.peering, "labels": {PEERING_LABEL: "true"}},
        }
        try:
            if scope.clusterwide:
                self._create(self._api.create_cluster_custom_object, CLUSTER_PEERINGS, body=body)
            for namespace in scope.namespaces:
                self._create(
                    self._api.create_namespaced_custom_object,
                    namespace,
                    NAMESPACED_PEERINGS,
                    body=body,
                )
        except ApiException as error:
            log.error(
                "cannot create the kopf peering object %r (%s %s): kopf waits until it exists; "
                "install the kopf.dev CRDs (charts/taskstore-operator/crds/kopf-peering.yaml)",
                scope.peering,
                error.status,
                error.reason,
            )

    @staticmethod
    def _create(creator: Callable[..., Any], *where: str, body: Manifest) -> None:
        kind = "KopfPeering" if where[-1] == NAMESPACED_PEERINGS else "ClusterKopfPeering"
        try:
            creator(PEERING_GROUP, PEERING_VERSION, *where, body={**body, "kind": kind})
        except ApiException as error:
            if error.status != 409:  # it exists: nothing to do
                raise
            return
        log.info(
            "created the kopf peering object %s %s",
            kind,
            "/".join((*where[:-1], body["metadata"]["name"])),
        )

    def read(self, scope: Scope) -> tuple[list[Manifest], list[Manifest]]:
        """The labelled ClusterKopfPeerings, and the labelled KopfPeerings that can overlap."""
        cluster = self._items(self._api.list_cluster_custom_object, CLUSTER_PEERINGS)
        if scope.clusterwide:
            namespaced = self._items(self._api.list_cluster_custom_object, NAMESPACED_PEERINGS)
        else:
            namespaced = [
                item
                for namespace in scope.namespaces
                for item in self._items(
                    self._api.list_namespaced_custom_object, namespace, NAMESPACED_PEERINGS
                )
            ]
        return cluster, namespaced

    @staticmethod
    def _items(lister: Callable[..., Any], *where: str) -> list[Manifest]:
        found = lister(PEERING_GROUP, PEERING_VERSION, *where, label_selector=PEERING_LABEL)
        items: list[Manifest] = found["items"]
        return items


def stand_by_while_overlapping(
    scope: Scope,
    reader: Callable[[Scope], tuple[list[Manifest], list[Manifest]]],
    own_identity: str | None,
    sleep: Callable[[float], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Return once no other install's operator serves a namespace of ``scope``.

    Until then log, once, which operators overlap and why this one waits. If the peering
    objects cannot be read (no peering CRDs, no permission), say so and go on: the check
    is a safety net, not a requirement to run.
    """
    announced: list[ForeignPeer] = []
    while True:
        try:
            cluster, namespaced = reader(scope)
        except ApiException as error:
            if announced:  # it was readable a moment ago: keep waiting
                sleep(STANDBY_POLL_SECONDS)
                continue
            if error.status == 404:
                # No kopf peering CRDs: no install (the chart's, the manifests') is running.
                log.debug("no kopf peering CRDs: no other TaskStore operator to look for")
                return
            log.warning(
                "cannot look for other TaskStore operators serving %s: reading the kopf "
                "peering objects failed (%s %s); if another install serves these namespaces "
                "without a shared peering, both will write (see docs/install.md, Topologies)",
                scope.describe(),
                error.status,
                error.reason,
            )
            return
        peers = overlapping_peers(scope, cluster, namespaced, own_identity, now())
        if not peers:
            if announced:
                log.info(
                    "no other TaskStore operator serves %s any more: starting", scope.describe()
                )
            return
        if peers != announced:
            log.error(
                "another TaskStore operator already serves %s: %s. Standing by until it stops: "
                "two operators without a shared peering would double every write and Event "
                "(supported topologies: docs/install.md, Topologies)",
                scope.describe(),
                ", ".join(str(peer) for peer in peers),
            )
            announced = peers
        sleep(STANDBY_POLL_SECONDS)
