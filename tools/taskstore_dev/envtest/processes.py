"""Child processes: free loopback ports, and the one way to stop a process.

Standard library only: ``scripts/control-plane`` runs without the virtualenv.
"""

import signal
import socket
import subprocess
from typing import Any

STOP_GRACE_SECONDS = 10.0


def pick_free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback ports that were free a moment ago."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    return pick_free_ports(1)[0]


def stop_process(
    process: "subprocess.Popen[Any]",
    grace: float = STOP_GRACE_SECONDS,
    sig: signal.Signals = signal.SIGTERM,
) -> None:
    """Stop a child: ``sig`` (SIGTERM), then SIGKILL after ``grace`` seconds; always reaped."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
