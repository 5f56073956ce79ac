"""A throwaway ``redis-server`` on a free loopback port, for the demo; stopped by its pid."""

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from .envtest.processes import free_port, stop_process
from .envtest.waiting import wait_for

START_TIMEOUT = 10.0


class LocalRedisError(RuntimeError):
    """redis-server is missing or did not start."""


@contextmanager
def local_redis_server(password: str | None = None) -> Iterator[int]:
    """Run redis-server (no persistence) for a ``with`` block; yields its port.

    With ``password``, the server asks for it once started: it is set through the
    connection (``CONFIG SET requirepass``), never on the command line.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise LocalRedisError("redis-server not found: run scripts/install-system-deps")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="taskstore-redis-") as directory:
        command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", directory]
        command += ["--save", "", "--appendonly", "no"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

            def answers() -> bool:
                if process.poll() is not None:
                    raise LocalRedisError(f"redis-server exited with code {process.returncode}")
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    return False

            wait_for("redis-server to answer PING", answers, START_TIMEOUT, interval=0.05)
            if password is not None:
                client.config_set("requirepass", password)
            client.close()
            yield port
        finally:
            stop_process(process)
