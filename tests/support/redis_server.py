"""A real ``redis-server`` (Debian's package) on a free loopback port, stopped by its pid.

``RedisServer`` is also the base of the HA tier's processes (``redis_sentinel``, ``redis_cluster``):
they differ only in the command line and the log line that says they are ready.
"""

import contextlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from taskstore_dev.envtest.processes import free_port, stop_process
from taskstore_dev.envtest.waiting import wait_for

__all__ = ["RedisServer", "free_port", "redis_binary", "running_redis_server"]

REDIS_SERVER = "redis-server"
# The Debian package that ships each binary the tests run.
DEBIAN_PACKAGES = {
    "redis-server": "redis-server",
    "redis-sentinel": "redis-sentinel",
    "redis-cli": "redis-tools",
}


def redis_binary(name: str = REDIS_SERVER) -> str:
    """Path of a Redis binary; a missing one is an error (never a skip) naming its package."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} not found: install Debian's {DEBIAN_PACKAGES[name]} package "
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
        args = [*self._program(), "--bind", "127.0.0.1", "--port", str(self.port)]
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
            self.resume()  # a stopped process would never act on SIGTERM
            stop_process(self._process)
            self._process = None

    def kill(self) -> None:
        """``kill -9``: the process dies without a word to its clients or peers."""
        if self._process is not None:
            stop_process(self._process, sig=signal.SIGKILL)
            self._process = None

    def pause(self) -> None:
        """``SIGSTOP``: a hung server, its sockets open, answering nothing."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """``SIGCONT`` after ``pause``."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

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

    def _program(self) -> list[str]:
        """The binary and any leading arguments (a sentinel's config file)."""
        return [redis_binary(REDIS_SERVER)]

    _ready_line = b"Ready to accept connections"

    def _is_ready(self) -> bool:
        log = self.directory / "redis.log"
        return log.exists() and self._ready_line in log.read_bytes()

    def _tls_args(self, names: str) -> list[str]:
        """Make a CA and a server certificate for ``names`` with openssl; serve TLS only."""
        d = str(self.directory)
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a CA needs its key usage and
        # a server certificate its authority key identifier, as real CAs issue them.
        (self.directory / "san.ext").write_text(
            f"subjectAltName={names}\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        for command in (
            ["req", "-x509", *new_key, "-days", "2", "-subj", "/CN=test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
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
