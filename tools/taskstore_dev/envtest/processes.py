"""Child processes of the demo, the benchmarks and the tests: the operator, and stopping."""

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

STOP_GRACE_SECONDS = 10.0


def stop_process(process: "subprocess.Popen[bytes]", grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop a child: SIGTERM, then SIGKILL after ``grace`` seconds; always reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_operator(
    kubeconfig: Path,
    log_path: Path,
    *arguments: str,
    environment: Mapping[str, str] | None = None,
) -> Iterator["subprocess.Popen[bytes]"]:
    """``python -m taskstore_operator`` against ``kubeconfig``, logging to ``log_path``.

    Metrics and liveness ports are off unless ``arguments`` set them; ``environment`` adds
    variables (``TASKSTORE_PEERING``, ...). The process is stopped on exit.
    """
    environment = {**os.environ, **(environment or {}), "KUBECONFIG": str(kubeconfig)}
    command = [sys.executable, "-m", "taskstore_operator", "--metrics-port=0", "--health-port=0"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, *arguments], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            stop_process(process)
