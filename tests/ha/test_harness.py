"""The HA harness's own pure parts: binary lookup and parsing ``CLUSTER NODES``."""

import pytest

from support.redis_cluster import parse_cluster_nodes
from support.redis_server import redis_binary


@pytest.mark.parametrize(
    ("binary", "package"),
    [
        ("redis-server", "redis-server"),
        ("redis-sentinel", "redis-sentinel"),
        ("redis-cli", "redis-tools"),
    ],
)
def test_a_missing_binary_is_an_error_naming_its_debian_package(
    monkeypatch: pytest.MonkeyPatch, binary: str, package: str
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FileNotFoundError, match=f"{binary} not found: install Debian's {package}"):
        redis_binary(binary)


def test_cluster_nodes_are_parsed_with_slot_ranges_and_migrations() -> None:
    text = (
        "aaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-2 5 [3->-bbb]\n"
        "bbb 127.0.0.1:7002@17002 master - 0 0 2 connected 6-7 [3-<-aaa]\n"
        "ccc 127.0.0.1:7003@17003 slave aaa 0 0 1 connected\n"
        "ddd 127.0.0.1:7004@17004 master,fail - 0 0 3 disconnected\n"
    )
    aaa, bbb, ccc, ddd = parse_cluster_nodes(text)
    assert (aaa.node_id, aaa.port, aaa.is_master, aaa.slots) == (
        "aaa",
        7001,
        True,
        frozenset({0, 1, 2, 5}),
    )
    assert bbb.slots == frozenset({6, 7})
    assert (ccc.is_master, ccc.master_id, ccc.failed) == (False, "aaa", False)
    assert (ddd.failed, ddd.slots) == (True, frozenset())
