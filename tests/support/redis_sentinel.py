"""Redis Sentinel as local processes: 1 master, 2 replicas and 3 ``redis-sentinel``.

The data nodes require ``DATA_PASSWORD``; the sentinels require their own ``SENTINEL_PASSWORD``
(``requirepass`` on a sentinel is also what it uses to talk to the other sentinels). Failovers
are injected by ``kill -9``, ``SIGSTOP`` or ``SENTINEL FAILOVER``; ``heal`` brings the set
back to three data nodes and agreeing sentinels, so one set serves a whole session.
"""

import time
from typing import Any

import redis
import redis.asyncio.sentinel

from support.polling import answered
from support.redis_server import RedisServer, redis_binary
from taskstore_dev.envtest.waiting import wait_for

MASTER_NAME = "mymaster"
DATA_PASSWORD = "ha-data-password"
SENTINEL_PASSWORD = "ha-sentinel-password"
DOWN_AFTER_MS = 1000
# How long one round of heal waits for health before it re-points the set and waits again.
HEAL_ATTEMPT_SECONDS = 20.0
# Sentinel blocks a new failover of the same master for twice this; short so tests can chain.
FAILOVER_TIMEOUT_MS = 5000
QUORUM = 2
POLL_SECONDS = 0.05

# A replica's full sync starts at once instead of after the default 5 s diskless-sync delay.
DATA_NODE_ARGS = (
    "--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD,
    "--repl-diskless-sync-delay", "0",
)  # fmt: skip

Address = tuple[str, int]


class SentinelProcess(RedisServer):
    """One ``redis-sentinel`` watching ``MASTER_NAME``; it rewrites its own config file."""

    _ready_line = b"+monitor master"

    def __init__(self, master_port: int, down_after_ms: int) -> None:
        super().__init__("--requirepass", SENTINEL_PASSWORD)
        self.config_file = self.directory / "sentinel.conf"
        self.config_file.write_text(
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {QUORUM}\n"
            f"sentinel auth-pass {MASTER_NAME} {DATA_PASSWORD}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
        )

    def _program(self) -> list[str]:
        return [redis_binary("redis-sentinel"), str(self.config_file)]


class RedisSentinelSet:
    """Three data nodes (one master, two replicas) and three sentinels on loopback ports."""

    def __init__(self, down_after_ms: int = DOWN_AFTER_MS) -> None:
        self.nodes = [RedisServer(*DATA_NODE_ARGS) for _ in range(3)]
        self.down_after_ms = down_after_ms
        self.sentinels = [SentinelProcess(self.nodes[0].port, down_after_ms) for _ in range(3)]

    @property
    def sentinel_addresses(self) -> list[Address]:
        return [("127.0.0.1", sentinel.port) for sentinel in self.sentinels]

    def start(self, timeout: float = 30.0) -> None:
        """Start the master, its replicas, then the sentinels; wait until all see each other."""
        master, *replicas = self.nodes
        master.start()
        for replica in replicas:
            replica.extra_args = [*DATA_NODE_ARGS, "--replicaof", "127.0.0.1", str(master.port)]
            replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_healthy(timeout)

    def cleanup(self) -> None:
        """Stop every process by its pid and remove their directories."""
        for process in [*self.sentinels, *self.nodes]:
            process.cleanup()

    def async_sentinel(
        self, timeout: float = 0.5, **kwargs: Any
    ) -> redis.asyncio.sentinel.Sentinel:
        """A redis-py Sentinel client of this set: ``master_for(MASTER_NAME)`` follows failovers.

        The sentinels' password goes in ``sentinel_kwargs`` (with its own timeout: a sentinel
        that hangs must not stall discovery); the data password in the connection kwargs.
        """
        return redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            self.sentinel_addresses,
            sentinel_kwargs={
                "password": SENTINEL_PASSWORD,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            },
            password=DATA_PASSWORD,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            **kwargs,
        )

    # --- reading the set's state -------------------------------------------------------------

    def data_client(self, port: int) -> redis.Redis:
        """A direct client of one data node (short timeouts: it may be paused)."""
        return redis.Redis(
            port=port, password=DATA_PASSWORD, decode_responses=True, socket_timeout=1
        )

    def sentinel_client(self, sentinel: SentinelProcess) -> redis.Redis:
        return redis.Redis(
            port=sentinel.port, password=SENTINEL_PASSWORD, decode_responses=True, socket_timeout=1
        )

    def reported_masters(self) -> list[Address | None]:
        """What each running sentinel answers to ``GET-MASTER-ADDR-BY-NAME`` (None if silent)."""
        answers: list[Address | None] = []
        for sentinel in self.sentinels:
            try:
                with self.sentinel_client(sentinel) as client:
                    reply = client.sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                reply = None
            answers.append(None if reply is None else (str(reply[0]), int(reply[1])))
        return answers

    def master_address(self) -> Address:
        """The master all sentinels agree on; ``RuntimeError`` if they disagree."""
        answers = set(self.reported_masters())
        if len(answers) != 1 or None in answers:
            raise RuntimeError(f"sentinels disagree on the master: {answers}")
        (address,) = answers
        assert address is not None
        return address

    def node_at(self, address: Address) -> RedisServer:
        """The data node listening on ``address``."""
        return next(node for node in self.nodes if node.port == address[1])

    def master(self) -> RedisServer:
        return self.node_at(self.master_address())

    def role(self, node: RedisServer) -> str:
        with self.data_client(node.port) as client:
            return str(client.execute_command("ROLE")[0])

    def subscribers(self, sentinel: SentinelProcess) -> set[int]:
        """The ids of the clients subscribed to ``sentinel``'s events (``CLIENT LIST``)."""
        with self.sentinel_client(sentinel) as client:
            listed = client.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
        return {int(line.split()[0].removeprefix("id=")) for line in str(listed).splitlines()}

    # --- failures ------------------------------------------------------------------------------

    def drop_subscribers(self, sentinel: SentinelProcess) -> None:
        """Close every client's subscription to ``sentinel``'s events (``CLIENT KILL``)."""
        with self.sentinel_client(sentinel) as client:
            client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")

    def kill_master(self) -> RedisServer:
        """``kill -9`` the current master; returns the dead node."""
        master = self.master()
        master.kill()
        return master

    def pause_master(self) -> RedisServer:
        """``SIGSTOP`` the current master (hung, not dead); ``heal`` resumes it."""
        master = self.master()
        master.pause()
        return master

    def sentinel_failover(self, within: float = 15.0) -> Address:
        """A planned switch by ``SENTINEL FAILOVER``; retried while sentinel is not ready for it.

        Right after start or a previous failover a sentinel answers ``NOGOODSLAVE`` (it has not
        yet seen a replica's ``INFO``) or ``INPROG``; returns the master it switched away from.
        """
        old = self.master_address()

        def accepted() -> bool:
            with self.sentinel_client(self.sentinels[0]) as client:
                try:
                    client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
                except redis.ResponseError:
                    return False
            return True

        wait_for("a sentinel accepts SENTINEL FAILOVER", answered(accepted), within, POLL_SECONDS)
        return old

    def wait_for_new_master(self, old: Address, within: float = 20.0) -> Address:
        """Wait until every sentinel names one master other than ``old`` that says it is master."""
        new: list[Address] = []

        def switched() -> bool:
            answers = set(self.reported_masters())
            if len(answers) != 1 or None in answers or old in answers:
                return False
            (address,) = answers
            assert address is not None
            if self.role(self.node_at(address)) != "master":
                return False
            new[:] = [address]
            return True

        wait_for(
            f"sentinels agree on a master other than {old}",
            answered(switched),
            within,
            POLL_SECONDS,
        )
        return new[0]

    # --- back to a healthy set -------------------------------------------------------------------

    def heal(self, timeout: float = 60.0) -> None:
        """Resume paused nodes, restart dead ones as replicas, wait until all is healthy again.

        On this shared machine the sentinels sometimes fail over the new master too, just
        after a failover (a busy node misses `down-after-milliseconds`): the set is then
        re-pointed at the newest master and waited for again, until ``timeout``.
        """
        for node in self.nodes:
            node.resume()
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.1, deadline - time.monotonic())
            try:
                self._repoint(left)
                self.wait_healthy(min(left, HEAL_ATTEMPT_SECONDS))
                return
            except (TimeoutError, RuntimeError, redis.RedisError):
                if time.monotonic() >= deadline:
                    raise

    def _repoint(self, timeout: float) -> None:
        """Once the sentinels agree: dead nodes restarted as replicas, a demoted one re-pointed."""
        wait_for(
            "sentinels agree",
            answered(lambda: len(set(self.reported_masters())) == 1),
            timeout,
            POLL_SECONDS,
        )
        master = self.master_address()
        for node in self.nodes:
            if not node.running:
                # Restarted as a replica at once, so there is never a second empty master.
                node.extra_args = [*DATA_NODE_ARGS, "--replicaof", *map(str, master)]
                node.start()
            elif node.port != master[1] and self.role(node) == "master":
                # A demoted master: sentinel would send this REPLICAOF at its next INFO of the
                # node, up to 10 s later (a compiled-in period); sending it now saves the wait.
                with self.data_client(node.port) as client:
                    client.replicaof(*master)

    def wait_healthy(self, timeout: float) -> None:
        """One master with two online replicas, as every sentinel sees it, none down."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        wait_for(
            "sentinels agree",
            answered(lambda: len(set(self.reported_masters())) == 1),
            left(),
            POLL_SECONDS,
        )
        master = self.master_address()

        def replicas_online() -> bool:
            with self.data_client(master[1]) as client:
                info = client.info("replication")
            online = [
                value for key, value in info.items()
                if key.startswith("slave") and isinstance(value, dict)
                and value.get("state") == "online"
            ]  # fmt: skip
            return info["role"] == "master" and len(online) == len(self.nodes) - 1

        wait_for(
            f"master {master} has two online replicas",
            answered(replicas_online),
            left(),
            POLL_SECONDS,
        )

        def sentinels_see_all() -> bool:
            for sentinel in self.sentinels:
                with self.sentinel_client(sentinel) as client:
                    state = client.sentinel_master(MASTER_NAME)
                    replicas = client.sentinel_slaves(MASTER_NAME)
                if state["is_sdown"] or state["is_odown"] or "failover" in str(state["flags"]):
                    return False
                if state["num-other-sentinels"] != len(self.sentinels) - 1:
                    return False
                up = [r for r in replicas if not r["is_sdown"] and not r["is_odown"]]
                if len(up) != len(self.nodes) - 1:
                    return False
            return True

        wait_for(
            "every sentinel sees the master, 2 replicas, 2 peers",
            answered(sentinels_see_all),
            left(),
            POLL_SECONDS,
        )
