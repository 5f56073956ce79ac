"""Which other operators overlap a scope, and standing by until they are gone."""

import logging
import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from taskstore_operator.__main__ import liveness_while_standing_by
from taskstore_operator.topology import (
    ForeignPeer,
    Scope,
    overlapping_peers,
    stand_by_while_overlapping,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
Manifest = dict[str, Any]


def peering(name: str, namespace: str | None = None, **peers: timedelta) -> Manifest:
    """A kopf peering object whose peers were last seen ``age`` ago, with a 60 s lifetime."""
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    status = {
        identity: {"priority": 1, "lifetime": 60, "lastseen": (NOW - age).isoformat()}
        for identity, age in peers.items()
    }
    return {"metadata": metadata, "status": status}


def never_sleep(seconds: float) -> None:
    pytest.fail(f"stood by {seconds} s although nothing could be read")


FRESH = timedelta(seconds=5)
EXPIRED = timedelta(seconds=61)
CLUSTERWIDE = Scope((), "cluster-ops")
TEAM_A = Scope(("team-a",), "team-ops")


def test_a_cluster_wide_operator_overlaps_every_namespaced_one() -> None:
    namespaced = [peering("team-ops", "team-a", pod1=FRESH)]
    assert overlapping_peers(TEAM_A, [peering("cluster-ops", pod0=FRESH)], [], None, NOW) == [
        ForeignPeer("pod0", "cluster-ops", None)
    ]
    assert overlapping_peers(CLUSTERWIDE, [], namespaced, None, NOW) == [
        ForeignPeer("pod1", "team-ops", "team-a")
    ]


def test_two_cluster_wide_installs_with_different_peerings_overlap() -> None:
    cluster = [peering("cluster-ops", me=FRESH), peering("other-release", pod9=FRESH)]
    assert overlapping_peers(CLUSTERWIDE, cluster, [], "me", NOW) == [
        ForeignPeer("pod9", "other-release", None)
    ]


def test_own_peering_and_own_identity_are_kopfs_business() -> None:
    cluster = [peering("cluster-ops", replica=FRESH)]
    assert overlapping_peers(CLUSTERWIDE, cluster, [], None, NOW) == []
    namespaced = [peering("team-ops", "team-a", replica=FRESH)]
    assert overlapping_peers(TEAM_A, [], namespaced, None, NOW) == []
    standalone = Scope((), None)
    assert overlapping_peers(standalone, cluster, [], "replica", NOW) == []


def test_namespaced_operators_over_other_namespaces_do_not_overlap() -> None:
    namespaced = [peering("b-ops", "team-b", pod=FRESH), peering("a-ops", "team-a", pod2=FRESH)]
    assert overlapping_peers(TEAM_A, [], namespaced, None, NOW) == [
        ForeignPeer("pod2", "a-ops", "team-a")
    ]


def test_expired_and_malformed_records_are_ignored() -> None:
    cluster = [peering("other", gone=EXPIRED)]
    cluster[0]["status"]["broken"] = {"lastseen": "yesterday"}
    cluster[0]["status"]["odd"] = "x"
    assert overlapping_peers(TEAM_A, cluster, [], None, NOW) == []


def test_stands_by_says_so_once_and_starts_when_the_peer_is_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers: list[tuple[list[Manifest], list[Manifest]]] = [
        ([peering("cluster-ops", pod0=FRESH)], []),
        ([peering("cluster-ops", pod0=FRESH)], []),
        ([peering("cluster-ops")], []),
    ]
    sleeps: list[float] = []
    with caplog.at_level(logging.INFO, "taskstore_operator.topology"):
        stand_by_while_overlapping(
            TEAM_A, lambda scope: answers.pop(0), None, sleeps.append, lambda: NOW
        )
    assert answers == [] and len(sleeps) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "another TaskStore operator already serves team-a: pod0 (ClusterKopfPeering "
        "cluster-ops). Standing by until it stops: two operators without a shared peering "
        "would double every write and Event (supported topologies: docs/install.md, Topologies)"
    ]
    assert "no other TaskStore operator serves team-a any more: starting" in caplog.text


def test_unreadable_peerings_are_reported_and_do_not_block(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def forbidden(scope: Scope) -> tuple[list[Manifest], list[Manifest]]:
        raise ApiException(status=403, reason="Forbidden")

    stand_by_while_overlapping(CLUSTERWIDE, forbidden, None, never_sleep, lambda: NOW)
    assert "cannot look for other TaskStore operators serving every namespace" in caplog.text
    assert "(403 Forbidden)" in caplog.text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_standing_by_operator_answers_the_liveness_probe_then_frees_the_port() -> None:
    port = _free_port()
    with liveness_while_standing_by(port) as sleep:
        sleep(0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert reply.status == 200
    # kopf binds the port next.
    with socket.socket() as after:
        after.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        after.bind(("0.0.0.0", port))  # noqa: S104 (the address the operator binds)


def test_an_operator_that_does_not_stand_by_binds_nothing() -> None:
    port = _free_port()
    with liveness_while_standing_by(port), socket.socket() as probe:
        probe.bind(("0.0.0.0", port))  # noqa: S104 (the address the operator binds)


def test_without_peering_crds_there_is_no_other_install_and_nothing_to_say(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def missing(scope: Scope) -> tuple[list[Manifest], list[Manifest]]:
        raise ApiException(status=404, reason="Not Found")

    with caplog.at_level(logging.INFO, "taskstore_operator.topology"):
        stand_by_while_overlapping(TEAM_A, missing, None, never_sleep, lambda: NOW)
    assert caplog.records == []
