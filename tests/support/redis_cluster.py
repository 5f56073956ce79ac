"""Redis Cluster as local processes: 6 ``redis-server --cluster-enabled yes`` nodes.

Made by ``redis-cli --cluster create ... --cluster-replicas 1`` (3 masters, 3 replicas), every
node requiring ``DATA_PASSWORD``. Helpers reshard slots with ``redis-cli --cluster reshard``,
``kill -9`` or ``SIGSTOP`` a master, or switch it to its replica with ``CLUSTER FAILOVER``;
``heal`` resumes paused nodes and restarts dead ones (both rejoin as replicas: the promoted
node's newer config epoch demotes them), so one cluster serves a whole session.
"""

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio.cluster

from support.polling import answered
from support.redis_server import RedisServer, free_port, redis_binary
from taskstore_dev.envtest.waiting import wait_for

DATA_PASSWORD = "ha-cluster-password"
# Milliseconds before a silent node is suspected; failover follows within about twice it.
NODE_TIMEOUT_MS = 1000
SLOTS = 16384
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    is_master: bool
    master_id: str | None
    failed: bool
    slots: frozenset[int]


def parse_cluster_nodes(text: str) -> list[ClusterNode]:
    """Parse ``CLUSTER NODES`` (importing/migrating markers are not slots and are skipped)."""
    nodes = []
    for line in text.strip().splitlines():
        node_id, address, flags, master, *_, link = line.split()[:8]
        slots: set[int] = set()
        for part in line.split()[8:]:
            if part.startswith("["):
                continue
            first, _, last = part.partition("-")
            slots.update(range(int(first), int(last or first) + 1))
        port = int(address.split("@")[0].rsplit(":", 1)[1])
        flag_set = set(flags.split(","))
        nodes.append(
            ClusterNode(
                node_id=node_id,
                port=port,
                is_master="master" in flag_set,
                master_id=None if master == "-" else master,
                failed="fail" in flag_set or "fail?" in flag_set or link != "connected",
                slots=frozenset(slots),
            )
        )
    return nodes


class RedisClusterSet:
    """Six cluster-enabled servers made into 3 masters with one replica each."""

    def __init__(self, node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        args = (
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            "--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD,
            "--repl-diskless-sync-delay", "0",
        )  # fmt: skip
        # The bus port is chosen too: the default (port + 10000) may be taken or above 65535.
        self.nodes = [RedisServer(*args, "--cluster-port", str(free_port())) for _ in range(6)]
        self._paused: set[int] = set()  # ports of nodes stopped by ``pause_master``

    @property
    def seed_port(self) -> int:
        """The port of an answering node (any node answers for the whole cluster)."""
        return next(node.port for node in self.nodes if self._answering(node))

    def _answering(self, node: RedisServer) -> bool:
        return node.running and node.port not in self._paused

    def start(self, timeout: float = 60.0) -> None:
        """Start the servers, create the cluster, wait until every node says ``ok``."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        self.redis_cli("--cluster", "create", *addresses, "--cluster-replicas", "1")
        self.wait_healthy(timeout)

    def cleanup(self) -> None:
        """Stop every node by its pid and remove their directories."""
        for node in self.nodes:
            node.resume()  # a stopped process would not act on SIGTERM
            node.cleanup()

    def redis_cli(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``redis-cli`` against the cluster (non-interactive); its output."""
        command = [redis_binary("redis-cli"), "--no-auth-warning", "-a", DATA_PASSWORD]
        if args[0] == "--cluster" and args[1] != "create":
            args = (*args[:2], f"127.0.0.1:{self.seed_port}", *args[2:])
        result = subprocess.run(
            [*command, *args, "--cluster-yes"], capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"redis-cli {' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        return result.stdout

    def async_client(
        self, timeout: float = 1.0, **kwargs: Any
    ) -> redis.asyncio.cluster.RedisCluster:
        """A redis-py cluster client seeded with one node; it learns the rest from it."""
        return redis.asyncio.cluster.RedisCluster(
            host="127.0.0.1",
            port=self.seed_port,
            password=DATA_PASSWORD,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            **kwargs,
        )

    # --- reading the cluster's state ---------------------------------------------------------

    def client(self, port: int) -> redis.Redis:
        """A direct (not cluster-aware) client of one node."""
        return redis.Redis(
            port=port, password=DATA_PASSWORD, decode_responses=True, socket_timeout=1
        )

    def topology(self, port: int | None = None) -> list[ClusterNode]:
        """``CLUSTER NODES`` as one running node sees it."""
        with self.client(port or self.seed_port) as client:
            return parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))

    def masters(self) -> list[ClusterNode]:
        """The masters that serve slots, by their first slot."""
        serving = [node for node in self.topology() if node.is_master and node.slots]
        return sorted(serving, key=lambda node: min(node.slots))

    def node(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    # --- changes and failures ------------------------------------------------------------------

    def reshard(self, source: ClusterNode, target: ClusterNode, slot_count: int) -> None:
        """Move ``slot_count`` slots (and their keys) from ``source`` to ``target``.

        ``redis-cli`` marks each slot migrating/importing, moves its keys in batches of
        ``--cluster-pipeline`` with ``MIGRATE``, then assigns the slot: clients meet ``ASK``
        while a slot moves and ``MOVED`` after.
        """
        self.redis_cli(
            "--cluster", "reshard",
            "--cluster-from", source.node_id, "--cluster-to", target.node_id,
            "--cluster-slots", str(slot_count), "--cluster-pipeline", "10",
        )  # fmt: skip
        self.wait_healthy(30.0)

    @contextlib.contextmanager
    def migrating(self, slot: int, source: ClusterNode, target: ClusterNode) -> Iterator[None]:
        """Hold ``slot`` half-moved (``MIGRATING`` on source, ``IMPORTING`` on target).

        Inside, the source answers ``ASK`` for keys it lacks; afterwards the slot is stable
        on the source again (keys written to the target meanwhile are deleted).
        """
        with self.client(target.port) as to, self.client(source.port) as from_:
            to.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            from_.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            try:
                yield
            finally:
                for key in to.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
                    with to.pipeline(transaction=False) as pipe:
                        pipe.execute_command("ASKING")
                        pipe.delete(key)
                        pipe.execute()
                for client in (to, from_):
                    client.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")

    def kill_master(self, victim: ClusterNode) -> RedisServer:
        """``kill -9`` the master ``victim``; its replica is promoted ``NODE_TIMEOUT_MS`` later."""
        server = self.node(victim.port)
        server.kill()
        return server

    def pause_master(self, victim: ClusterNode) -> RedisServer:
        """``SIGSTOP`` the master ``victim`` (hung: its sockets open, answering nothing); its
        replica is promoted ``NODE_TIMEOUT_MS`` and an election later; ``heal`` resumes it."""
        server = self.node(victim.port)
        server.pause()
        self._paused.add(server.port)
        return server

    def cluster_failover(self, master: ClusterNode, within: float = 30.0) -> ClusterNode:
        """A planned switch: ``CLUSTER FAILOVER`` sent to a replica of ``master``; returns that
        replica once it serves ``master``'s slots.

        The command answers at once; then the replica has its master stop taking writes,
        waits until it has replicated all of them, and is elected (Redis's manual failover).
        """
        replica = next(node for node in self.topology() if node.master_id == master.node_id)
        with self.client(replica.port) as client:
            client.execute_command("CLUSTER", "FAILOVER")
        promoted = self.wait_for_promotion(master, within)
        assert promoted.node_id == replica.node_id, f"{promoted} took over, not {replica}"
        return promoted

    def wait_for_promotion(self, victim: ClusterNode, within: float = 30.0) -> ClusterNode:
        """Wait until ``victim``'s slots are served by another master and the cluster is ``ok``."""
        promoted: list[ClusterNode] = []

        def taken_over() -> bool:
            owners = [
                node for node in self.topology()
                if node.is_master and not node.failed and victim.slots <= node.slots
            ]  # fmt: skip
            if len(owners) != 1 or owners[0].node_id == victim.node_id:
                return False
            promoted[:] = owners
            return self._all_ok()

        wait_for(
            f"a replica takes over the slots of {victim.port}",
            answered(taken_over),
            within,
            POLL_SECONDS,
        )
        return promoted[0]

    # --- back to a healthy cluster -------------------------------------------------------------

    def heal(self, timeout: float = 60.0) -> None:
        """Resume paused nodes, restart dead ones (both rejoin as replicas), and wait until the
        cluster is healthy."""
        for node in self.nodes:
            if not node.running:
                node.start()
            elif node.port in self._paused:
                node.resume()
        self._paused.clear()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        """All six nodes up, agreeing, every slot served, three masters each with a replica."""

        def healthy() -> bool:
            if not self._all_ok():
                return False
            views = [self.topology(node.port) for node in self.nodes]
            for view in views:
                if len(view) != len(self.nodes) or any(node.failed for node in view):
                    return False
                masters = [node for node in view if node.is_master and node.slots]
                if sum(len(node.slots) for node in masters) != SLOTS or len(masters) != 3:
                    return False
                replicated = {node.master_id for node in view if not node.is_master}
                if replicated != {node.node_id for node in masters}:
                    return False
            # Every node must name the same owner for every slot (gossip has converged).
            return len({frozenset((n.node_id, n.slots) for n in v if n.slots) for v in views}) == 1

        wait_for(
            "the cluster is healthy (6 nodes, 3 masters, all slots)",
            answered(healthy),
            timeout,
            POLL_SECONDS,
        )

    def _all_ok(self) -> bool:
        for node in self.nodes:
            if self._answering(node):
                with self.client(node.port) as client:
                    if "cluster_state:ok" not in str(client.execute_command("CLUSTER", "INFO")):
                        return False
        return True
