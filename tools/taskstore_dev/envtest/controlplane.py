"""Start and stop a local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager.

Like controller-runtime's envtest, but with the controller manager, so garbage collection,
namespace deletion and service-account tokens work. No scheduler or kubelet runs, so Pods
never start. Only the standard library is used, so the demo and the CLI can use it
without the Kubernetes client.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from .binaries import Binaries, find_binaries
from .processes import pick_free_ports, stop_process
from .waiting import wait_for

DEFAULT_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "deployment-controller",
    "replicaset-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
)

STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 30
POLL_INTERVAL_SECONDS = 0.1
# No kubelet runs, so no pod starts: a StatefulSet of one replica is made ready by setting
# its status to what the StatefulSet controller reports once the pod runs.
READY_STATEFULSET_STATUS = {
    "replicas": 1,
    "readyReplicas": 1,
    "currentReplicas": 1,
    "updatedReplicas": 1,
}

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, \
DNS:kubernetes.default.svc, IP:10.0.0.1
"""

_PR_SET_PDEATHSIG = 1
# Looked up before any fork: the child may only call it, not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """Runs in the child before exec: a killed test run must not leave servers behind.

    Linux sends the signal when the *thread* that started the child ends, so start
    control planes from a thread that outlives them (the main thread in practice).
    """
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_METRIC_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# Verbs of requests that change something, as apiserver_request_total labels them:
# a server-side apply is APPLY, not PATCH.
WRITE_VERBS = frozenset({"APPLY", "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION"})
# Written by the API server itself: its identity lease heartbeat, Service IP allocation.
SERVER_OWN_RESOURCES = frozenset({"leases", "ipaddresses"})


class RequestKind(NamedTuple):
    """What a request did, as the API server's metrics label it."""

    verb: str
    resource: str
    subresource: str

    @property
    def is_write(self) -> bool:
        """Whether requests of this kind change something."""
        return self.verb in WRITE_VERBS


def requests_between(
    before: Mapping[RequestKind, float], after: Mapping[RequestKind, float]
) -> dict[RequestKind, float]:
    """Requests served between two readings of ``request_totals()``, less the server's own."""
    served = {kind: count - before.get(kind, 0.0) for kind, count in after.items()}
    return {k: n for k, n in served.items() if n > 0 and k.resource not in SERVER_OWN_RESOURCES}


class ControlPlaneError(RuntimeError):
    """A component failed to start or the API server refused a request."""


class _PortInUseError(Exception):
    """A component exited because one of its ports was taken in the meantime."""


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def stop(self) -> None:
        stop_process(self.popen, STOP_GRACE_SECONDS)


_running: set[ControlPlane] = set()


@atexit.register
def _stop_all() -> None:
    for plane in list(_running):
        plane.stop()


class ControlPlane:
    """etcd, kube-apiserver (RBAC) and kube-controller-manager on free loopback ports.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. After start,
    :attr:`kubeconfig` is an admin (``system:masters``) kubeconfig accepted by kubectl,
    the Python client and kopf. Everything lives in a temporary directory that
    :meth:`stop` removes, after stopping every process it started.
    """

    def __init__(
        self,
        binaries: Binaries | None = None,
        *,
        start_timeout: float = 60.0,
        controllers: Sequence[str] | None = DEFAULT_CONTROLLERS,
        extra_apiserver_args: Sequence[str] = (),
        port_attempts: int = 5,
    ) -> None:
        """Configure, without starting anything.

        ``controllers=None`` runs no kube-controller-manager (as envtest does); it is
        also left out when ``binaries`` has none. Without binaries, the cached build
        is used (it must exist: run ``scripts/control-plane build``).
        """
        self.binaries = binaries or find_binaries(build=False)
        self.start_timeout = start_timeout
        self.controllers = tuple(controllers or ()) if self.binaries.kube_controller_manager else ()
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.port_attempts = port_attempts
        self._processes: list[_Process] = []
        self._work_dir: Path | None = None
        self._server: str | None = None
        self._tls: ssl.SSLContext | None = None

    # -- public API -----------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        """The temporary directory holding certificates, data and logs."""
        if self._work_dir is None:
            raise ControlPlaneError("the control plane is not started")
        return self._work_dir

    @property
    def server(self) -> str:
        """The API server URL, e.g. ``https://127.0.0.1:40123``."""
        if self._server is None:
            raise ControlPlaneError("the control plane is not started")
        return self._server

    @property
    def kubeconfig(self) -> Path:
        """Path of the admin kubeconfig (user ``admin`` in group ``system:masters``)."""
        return self.work_dir / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the serving certificate and the client certificates."""
        return self.work_dir / "ca.crt"

    @property
    def has_controller_manager(self) -> bool:
        """Whether kube-controller-manager runs (needed for garbage collection)."""
        return bool(self.controllers)

    @property
    def process_ids(self) -> list[int]:
        """Pids of the processes this control plane started and has not stopped."""
        return [process.popen.pid for process in self._processes]

    def start(self) -> None:
        """Start every component and wait until the API server is ready.

        Raises :class:`ControlPlaneError` with the tail of the component's log as soon as
        one exits or the deadline passes; whatever was started is stopped again.
        """
        if self._work_dir is not None:
            raise ControlPlaneError("the control plane is already started")
        self._work_dir = Path(tempfile.mkdtemp(prefix="teal-taskstore-control-plane-"))
        _running.add(self)
        try:
            deadline = time.monotonic() + self.start_timeout
            self._make_certificates()
            etcd_url = self._start_etcd(deadline)
            self._start_apiserver(etcd_url, deadline)
            if self.controllers:
                self._start_controller_manager(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every started process by pid (terminate, wait, kill) and remove the files."""
        while self._processes:
            self._processes.pop().stop()
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._work_dir = None
        self._server = None
        self._tls = None
        _running.discard(self)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def check_running(self) -> None:
        """Raise :class:`ControlPlaneError` if a component has exited."""
        for process in self._processes:
            code = process.popen.poll()
            if code is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with code {code}; "
                    f"last lines of {process.log_path}:\n{process.log_tail()}"
                )

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """Send one request as the admin user; return the status code and the raw body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310  # our own https:// server
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310  # the Request above
                request, context=self._admin_tls(), timeout=timeout
            ) as reply:
                return int(reply.status), bytes(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def watch(self, path: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """Stream the watch events of a collection after ``resource_version``, as the admin.

        Yields each event (``type`` and ``object``) as it comes; ends when the server ends
        the stream (its timeout), and raises on an error status.
        """
        query = urllib.parse.urlencode(
            {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "1"}
        )
        request = urllib.request.Request(  # noqa: S310  # our own https:// server
            f"{self.server}{path}?{query}", headers={"Accept": "application/json"}
        )
        with urllib.request.urlopen(request, context=self._admin_tls()) as reply:  # noqa: S310
            for line in reply:
                event: dict[str, Any] = json.loads(line)
                if event["type"] == "ERROR":
                    raise ControlPlaneError(f"watch of {path} failed: {event['object']}")
                yield event

    def request_json(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Like :meth:`request`, but raise on an error status and decode the JSON reply."""
        status, payload = self.request(method, path, body)
        if status >= 400:
            raise ControlPlaneError(f"{method} {path} failed with {status}: {payload[:500]!r}")
        decoded: dict[str, Any] = json.loads(payload)
        return decoded

    def request_totals(self) -> dict[RequestKind, float]:
        """Requests the API server has served so far, from its own ``apiserver_request_total``.

        Keyed by (verb, resource, subresource); the counts include every client.
        """
        status, body = self.request("GET", "/metrics", timeout=30.0)
        if status != 200:
            raise ControlPlaneError(f"GET /metrics failed with {status}: {body[:300]!r}")
        totals: dict[RequestKind, float] = {}
        for line in body.decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
            labels = dict(_METRIC_LABEL.findall(labels_text))
            kind = RequestKind(
                labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", "")
            )
            totals[kind] = totals.get(kind, 0.0) + float(value)
        return totals

    def install_crd(self, manifest: Mapping[str, Any], *, timeout: float = 30.0) -> None:
        """Create (or replace) a CustomResourceDefinition and wait until it is Established."""
        collection = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        name = manifest["metadata"]["name"]
        deadline = time.monotonic() + timeout
        status, payload = self.request("POST", collection, manifest)
        if status == 409:

            def replaced() -> bool:
                # A PUT loses to any write since the GET (the server's own status updates of a
                # new CRD included): read the new version and try again.
                current = self.request_json("GET", f"{collection}/{name}")
                replacement = json.loads(json.dumps(manifest))
                replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                status, payload = self.request("PUT", f"{collection}/{name}", replacement)
                if status == 409:
                    return False
                if status >= 400:
                    raise ControlPlaneError(
                        f"replacing CRD {name} failed with {status}: {payload[:500]!r}"
                    )
                return True

            self._wait_for(f"CRD {name} to be replaced", replaced, deadline)
        elif status >= 400:
            raise ControlPlaneError(f"creating CRD {name} failed with {status}: {payload[:500]!r}")

        def established() -> bool:
            # A new CRD's status may hold no conditions yet ("conditions": null).
            status = self.request_json("GET", f"{collection}/{name}").get("status") or {}
            return any(
                condition["type"] == "Established" and condition["status"] == "True"
                for condition in status.get("conditions") or []
            )

        self._wait_for(f"CRD {name} to be Established", established, deadline)

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, expiration_seconds: int = 3600
    ) -> Path:
        """Write a kubeconfig that acts as ServiceAccount ``namespace/name`` (TokenRequest API).

        The ServiceAccount must exist. The token is only written to the kubeconfig file.
        """
        token_request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        path = (
            f"/api/v1/namespaces/{urllib.parse.quote(namespace)}"
            f"/serviceaccounts/{urllib.parse.quote(name)}/token"
        )
        token = self.request_json("POST", path, token_request)["status"]["token"]
        kubeconfig = self.work_dir / f"serviceaccount-{namespace}-{name}.kubeconfig"
        self._write_kubeconfig(
            kubeconfig, f"system:serviceaccount:{namespace}:{name}", {"token": token}
        )
        return kubeconfig

    def kubectl(
        self, *args: str, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as admin against this control plane (not checked: inspect the result)."""
        return subprocess.run(
            [str(self.binaries.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    # -- start-up -------------------------------------------------------------------------

    def _make_certificates(self) -> None:
        directory = self.work_dir
        config = directory / "openssl.cnf"
        config.write_text(_OPENSSL_CONFIG)
        # EC keys: generating them takes milliseconds, RSA keys take much longer.
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            directory,
            "req", "-x509", "-config", str(config), "-extensions", "ca", *new_key,
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=teal-taskstore-test-ca",
        )  # fmt: skip
        for name, subject, extensions in (
            ("admin", "/O=system:masters/CN=admin", "client"),
            ("apiserver", "/CN=kube-apiserver", "server"),
        ):
            _openssl(
                directory,
                "req", "-new", "-config", str(config), *new_key,
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
            )  # fmt: skip
            _openssl(
                directory,
                "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", str(secrets.randbits(63)), "-days", "2",
                "-extfile", str(config), "-extensions", extensions, "-out", f"{name}.crt",
            )  # fmt: skip
        # The key the API server signs ServiceAccount tokens with, and its public half.
        _openssl(
            directory,
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "serviceaccount.key",
        )  # fmt: skip
        _openssl(
            directory, "pkey", "-in", "serviceaccount.key", "-pubout", "-out", "serviceaccount.pub"
        )

    def _start_etcd(self, deadline: float) -> str:
        def arguments(ports: list[int]) -> list[str]:
            client, peer = (f"http://127.0.0.1:{port}" for port in ports)
            return [
                str(self.binaries.etcd),
                "--name=default",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                # Throw-away data: durability only costs time here.
                "--unsafe-no-fsync",
            ]

        def ready(ports: list[int]) -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{ports[0]}/health", timeout=1
                ) as reply:
                    return bool(json.loads(reply.read()).get("health") == "true")
            except (OSError, ValueError):
                return False

        ports = self._start_on_free_ports("etcd", 2, arguments, ready, deadline)
        return f"http://127.0.0.1:{ports[0]}"

    def _start_apiserver(self, etcd_url: str, deadline: float) -> None:
        directory = self.work_dir

        def arguments(ports: list[int]) -> list[str]:
            self._server = f"https://127.0.0.1:{ports[0]}"
            self._write_kubeconfig(
                self.kubeconfig,
                "admin",
                {
                    "client-certificate": str(directory / "admin.crt"),
                    "client-key": str(directory / "admin.key"),
                },
            )
            arguments = [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports[0]}",
                f"--cert-dir={directory / 'apiserver-certs'}",
                f"--tls-cert-file={directory / 'apiserver.crt'}",
                f"--tls-private-key-file={directory / 'apiserver.key'}",
                f"--client-ca-file={self.ca_file}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={directory / 'serviceaccount.pub'}",
                f"--service-account-signing-key-file={directory / 'serviceaccount.key'}",
                # Room for the benchmark's 1,000 stores (a /24 holds 254 Services).
                "--service-cluster-ip-range=10.0.0.0/16",
                "--allow-privileged=true",
                # The default reconciler would publish 127.0.0.1 as the `kubernetes`
                # Service's endpoint, which validation rejects as a loopback address.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
            ]
            if not self.controllers:
                # Nothing creates the `default` ServiceAccounts, so Pods would be refused.
                arguments.append("--disable-admission-plugins=ServiceAccount")
            return arguments + list(self.extra_apiserver_args)

        def ready(ports: list[int]) -> bool:
            try:
                # Short timeout: a port taken by something else may accept and never answer.
                return self.request("GET", "/readyz", timeout=2)[0] == 200
            except (OSError, http.client.HTTPException):
                return False

        self._start_on_free_ports("kube-apiserver", 1, arguments, ready, deadline)

    def _start_controller_manager(self, deadline: float) -> None:
        assert self.binaries.kube_controller_manager is not None  # checked in __init__
        directory = self.work_dir
        self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                # No serving endpoint needed: readiness is seen through the API instead.
                "--secure-port=0",
                f"--controllers={','.join(self.controllers)}",
                f"--service-account-private-key-file={directory / 'serviceaccount.key'}",
                f"--root-ca-file={self.ca_file}",
            ],
        )
        if "serviceaccount-controller" in self.controllers:
            # The `default` ServiceAccount appears once the controllers are running.
            self._wait_for(
                "kube-controller-manager to create the default ServiceAccount",
                lambda: (
                    self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0]
                    == 200
                ),
                deadline,
            )

    def _start_on_free_ports(
        self,
        name: str,
        port_count: int,
        arguments: Callable[[list[int]], list[str]],
        ready: Callable[[list[int]], bool],
        deadline: float,
    ) -> list[int]:
        """Start a component, and start it again on other ports if one was taken meanwhile."""
        for _ in range(self.port_attempts):
            ports = pick_free_ports(port_count)
            process = self._spawn(name, arguments(ports))
            try:
                self._wait_for(
                    f"{name} to be ready", functools.partial(ready, ports), deadline, process
                )
            except _PortInUseError:
                self._processes.remove(process)
                process.stop()
                continue
            return ports
        raise ControlPlaneError(f"{name}: all of {self.port_attempts} port choices were in use")

    def _spawn(self, name: str, arguments: list[str]) -> _Process:
        log_path = self.work_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                # Own session: a Ctrl-C meant for the caller must not kill the servers
                # before the caller stops them in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        process = _Process(name, popen, log_path)
        self._processes.append(process)
        return process

    def _wait_for(
        self,
        what: str,
        condition: Callable[[], bool],
        deadline: float,
        starting: _Process | None = None,
    ) -> None:
        """Poll ``condition`` until it holds; fail at once if a started process exits.

        If ``starting`` exits because a port is taken, raise :class:`_PortInUseError`.
        """

        def holds() -> bool:
            if (
                starting is not None
                and starting.popen.poll() is not None
                and "address already in use" in starting.log_tail()
            ):
                raise _PortInUseError(starting.name)
            self.check_running()
            return condition()

        try:
            wait_for(what, holds, max(deadline - time.monotonic(), 0.0), POLL_INTERVAL_SECONDS)
        except TimeoutError:
            logs = "\n".join(
                f"--- last lines of {process.log_path}:\n{process.log_tail()}"
                for process in self._processes
            )
            raise ControlPlaneError(f"timed out waiting for {what}\n{logs}") from None

    def _admin_tls(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            context.load_cert_chain(self.work_dir / "admin.crt", self.work_dir / "admin.key")
            self._tls = context
        return self._tls

    def _write_kubeconfig(self, path: Path, user: str, credentials: Mapping[str, str]) -> None:
        # JSON is valid YAML, and needs no YAML library.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "teal-taskstore",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": user, "user": dict(credentials)}],
            "contexts": [
                {
                    "name": "teal-taskstore",
                    "context": {"cluster": "teal-taskstore", "user": user, "namespace": "default"},
                }
            ],
            "current-context": "teal-taskstore",
        }
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(config, handle, indent=2)


def _openssl(directory: Path, *arguments: str) -> None:
    if shutil.which("openssl") is None:
        raise ControlPlaneError("openssl is missing: run scripts/install-system-deps")
    result = subprocess.run(
        ["openssl", *arguments], cwd=directory, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {arguments[0]} failed: {result.stderr.strip()}")
