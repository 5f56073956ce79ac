"""The one operator runner of the demo, the benchmarks and the tests.

``python -m taskstore_operator`` as a child process against a kubeconfig: started,
stopped (gracefully or killed), restarted with other flags, its log and its metrics read.
"""

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .processes import pick_free_ports, stop_process
from .waiting import wait_for

OPERATOR_START_TIMEOUT = 30.0


def _answers(url: str) -> bool:
    """Whether ``url`` (our own loopback server) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
            return bool(reply.status == 200)
    except OSError:
        return False


class OperatorProcess:
    """``python -m taskstore_operator`` against ``kubeconfig``, logging to ``log_path``.

    ``arguments`` and ``environment`` apply to every start. With ``serve``, the metrics and
    liveness ports are free loopback ports and ``start`` waits for ``/healthz``; without,
    both are off. Restartable: each start appends to the same log.
    """

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        *arguments: str,
        environment: Mapping[str, str] | None = None,
        serve: bool = False,
    ) -> None:
        self.log_path = log_path
        self.arguments = arguments
        self.environment = {**os.environ, **(environment or {}), "KUBECONFIG": str(kubeconfig)}
        self.serve = serve
        self.metrics_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *arguments: str) -> None:
        """Start it, with ``arguments`` added for this run only."""
        health_port = 0
        if self.serve:
            self.metrics_port, health_port = pick_free_ports(2)
        command = [
            *(sys.executable, "-m", "taskstore_operator"),
            f"--metrics-port={self.metrics_port}",
            f"--health-port={health_port}",
            *self.arguments,
            *arguments,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        if self.serve:
            wait_for(
                "the operator's /healthz",
                lambda: self._running() and _answers(f"http://127.0.0.1:{health_port}/healthz"),
                OPERATOR_START_TIMEOUT,
            )

    def _running(self) -> bool:
        """True while the process runs; an early exit raises with the end of the log."""
        code = self.poll()
        if code is not None:
            raise RuntimeError(f"the operator exited with code {code}:\n{self.log()[-3000:]}")
        return True

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop it with ``sig`` (SIGKILL: at once), SIGKILL after a grace period."""
        if self.process is not None:
            stop_process(self.process, sig=sig)
            self.process = None

    def poll(self) -> int | None:
        """The exit code, or None while it runs (or was never started)."""
        return None if self.process is None else self.process.poll()

    @property
    def pid(self) -> int:
        """The running process' id."""
        assert self.process is not None, "the operator is not running"
        return self.process.pid

    def log(self) -> str:
        """Everything it logged so far, over every start."""
        return self.log_path.read_text(errors="replace")

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Its own Prometheus metrics (needs ``serve``): name, labels, value."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
        return [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def metrics(self) -> dict[str, float]:
        """Its own metrics, summed over labels."""
        totals: dict[str, float] = {}
        for name, _, value in self.samples():
            totals[name] = totals.get(name, 0.0) + value
        return totals

    def idle(self) -> bool:
        """Whether its reconcile queue is empty."""
        return self.metrics().get("taskstore_operator_queue_depth", 1.0) == 0.0


@contextmanager
def running_operator(
    kubeconfig: Path,
    log_path: Path,
    *arguments: str,
    environment: Mapping[str, str] | None = None,
    serve: bool = False,
) -> Iterator[OperatorProcess]:
    """An ``OperatorProcess`` started for the duration of a ``with`` block."""
    operator = OperatorProcess(
        kubeconfig, log_path, *arguments, environment=environment, serve=serve
    )
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
