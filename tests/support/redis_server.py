"""A real ``redis-server`` (Debian's package) on a free loopback port, stopped by its pid."""

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from taskstore_dev.envtest.processes import free_port, stop_process
from taskstore_dev.envtest.waiting import wait_for

__all__ = ["RedisServer", "free_port", "redis_server_binary", "running_redis_server"]

REDIS_SERVER = "redis-server"


def redis_server_binary() -> str:
    """Path of ``redis-server``; under CI a missing binary is an error, never a skip."""
    path = shutil.which(REDIS_SERVER)
    if path is None:
        raise FileNotFoundError(
            "redis-server not found: install Debian's redis-server package "
            "(`make test` does it via scripts/install-system-deps)"
        )
    return path


class RedisServer:
    """One ``redis-server`` process in a temporary directory; restartable on the same port."""

    def __init__(
        self, *extra_args: str, tls: bool = False, tls_names: str = "IP:127.0.0.1,DNS:localhost"
    ) -> None:
        """``tls_names``: the server certificate's subjectAltName (a TLS server only)."""
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="teal-redis-"))
        self.extra_args = [*(self._tls_args(tls_names) if tls else []), *extra_args]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers ``PING``."""
        log_file = self.directory / "redis.log"
        log_file.unlink(missing_ok=True)
        args = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.directory), "--save", "", "--appendonly", "no"]
        args += ["--logfile", str(log_file)]
        process = subprocess.Popen([*args, *self.extra_args], stdout=subprocess.DEVNULL)
        self._process = process

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start:\n{self.log_tail()}")
            return self._is_ready()

        try:
            wait_for("redis-server to accept connections", ready, timeout, interval=0.02)
        except TimeoutError as error:
            self.stop()
            raise TimeoutError(f"{error}:\n{self.log_tail()}") from None

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL)."""
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port (data is not kept unless configured)."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(FileNotFoundError):
            text = (self.directory / "redis.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _is_ready(self) -> bool:
        log = self.directory / "redis.log"
        return log.exists() and b"Ready to accept connections" in log.read_bytes()

    def _tls_args(self, names: str) -> list[str]:
        """Make a CA and a server certificate for ``names`` with openssl; serve TLS only."""
        d = str(self.directory)
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        (self.directory / "san.ext").write_text(f"subjectAltName={names}\n")
        for command in (
            ["req", "-x509", *new_key, "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt"],
            ["req", "-new", *new_key, "-subj", "/CN=127.0.0.1",
             "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr"],
            ["x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.crt",
             "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", f"{d}/san.ext", "-out", f"{d}/server.crt"],
        ):  # fmt: skip
            subprocess.run(["openssl", *command], check=True, capture_output=True)
        return [
            "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
            "--tls-cert-file", f"{d}/server.crt", "--tls-key-file", f"{d}/server.key",
            "--tls-ca-cert-file", f"{d}/ca.crt",
        ]  # fmt: skip

    @property
    def ca_certificate(self) -> Path:
        """The CA that signed the TLS server certificate (TLS servers only)."""
        return self.directory / "ca.crt"


@contextlib.contextmanager
def running_redis_server(
    *extra_args: str, tls: bool = False, tls_names: str = "IP:127.0.0.1,DNS:localhost"
) -> Iterator[RedisServer]:
    """Start a server for the duration of a ``with`` block."""
    server = RedisServer(*extra_args, tls=tls, tls_names=tls_names)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
