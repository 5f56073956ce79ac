#!/usr/bin/env python3
"""Benchmark the operator: N TaskStores with M labelled Deployments each, on a local cluster.

Creates the objects first (backends cycling memory, managed Redis, external Redis, and
unrelated 2 KB Secrets in other namespaces, which the operator must neither read nor
hold), then starts the operator and measures the time until every TaskStore is Ready with
all its agents injected, the API requests by verb during that convergence, during a
steady period afterwards and during the cleanup after every TaskStore is deleted (until
none is left and no agent carries an injection), all from the API server's own
apiserver_request_total less the benchmark's own requests, and the operator's peak
resident memory. No kubelet runs, so the benchmark reports each managed Redis
StatefulSet ready itself, as a kubelet would.

The operator runs as deployed: with the token of the ServiceAccount the plain manifests
create, under their least-privilege RBAC. The control plane runs only the garbage-collector
and namespace controllers: the Deployment controller's ReplicaSet writes would blur the
operator's figures.

    .venv/bin/python scripts/bench_operator.py [--stores 1000] [--agents 5] \
        [--unrelated-secrets 5000] [--steady 60]
"""

import argparse
import base64
import collections
import contextlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.samples import (
    MANAGED,
    MEMORY,
    agent_deployment,
    external_with_password,
    password_secret,
    taskstore,
)
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.binaries import find_binaries
from taskstore_dev.envtest.controlplane import (
    READY_STATEFULSET_STATUS,
    RequestKind,
    requests_between,
)
from taskstore_dev.envtest.operator_process import running_operator
from taskstore_dev.envtest.waiting import wait_for
from taskstore_dev.paths import MANIFEST_PATH
from taskstore_operator.api.contract import CONFIG_HASH_ANNOTATION

NAMESPACE = "bench"
# Where the plain manifests put the operator's ServiceAccount, and its name.
OPERATOR_NAMESPACE = "taskstore-system"
OPERATOR_ACCOUNT = "taskstore-operator"
CONVERGE_TARGET_S = 60.0
CLEANUP_TARGET_S = 60.0
# Unrelated Secrets are spread over this many other namespaces, 2 KB each.
NOISE_NAMESPACES = 10
NOISE_BYTES = 2048
RSS_TARGET_MB = 200.0
CORE = f"/api/v1/namespaces/{NAMESPACE}"
APPS = f"/apis/apps/v1/namespaces/{NAMESPACE}"
STORES = f"/apis/tealagents.io/v1alpha1/namespaces/{NAMESPACE}/taskstores"
# Backends cycle so every kind of reconcile is measured.
BACKENDS = {
    "memory": MEMORY,
    "managed": MANAGED,
    "external": external_with_password("external-auth", host="redis.example"),
}
SPECS = tuple(BACKENDS.values())


class Bench:
    """The benchmark's own API calls, counted so they can be taken out of the server's."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.own: collections.Counter[RequestKind] = collections.Counter()
        self._counting = threading.Lock()  # the watch threads make requests too

    def call(
        self, verb: str, path: str, body: dict[str, Any] | None = None, **kind: str
    ) -> dict[str, Any]:
        """One request as admin, counted under its verb and ``resource``/``subresource``."""
        method = {"LIST": "GET", "DELETECOLLECTION": "DELETE"}.get(verb, verb)
        content_type = "application/merge-patch+json" if verb == "PATCH" else "application/json"
        # Deleting a whole collection is one long request.
        timeout = 300.0 if verb == "DELETECOLLECTION" else 10.0
        status, payload = self.plane.request(
            method, path, body, content_type=content_type, timeout=timeout
        )
        if status >= 400:
            raise RuntimeError(f"{method} {path} failed with {status}: {payload[:300]!r}")
        with self._counting:
            self.own[RequestKind(verb, kind["resource"], kind.get("subresource", ""))] += 1
        decoded: dict[str, Any] = json.loads(payload)
        return decoded

    def create_objects(self, stores: int, agents: int) -> None:
        self.call(
            "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}, resource="namespaces"
        )
        secret = password_secret("external-auth", "x")
        self.call("POST", f"{CORE}/secrets", secret, resource="secrets")

        def create_store(index: int) -> None:
            store = taskstore(f"store-{index}", SPECS[index % len(SPECS)])
            self.call("POST", f"{STORES}", store, resource="taskstores")
            for number in range(agents):
                agent = agent_deployment(f"agent-{index}-{number}", f"store-{index}")
                self.call("POST", f"{APPS}/deployments", agent, resource="deployments")

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(create_store, range(stores)))

    def create_unrelated_secrets(self, count: int) -> None:
        """``count`` Secrets of 2 KB in other namespaces, none named by a TaskStore."""
        if not count:
            return
        for index in range(NOISE_NAMESPACES):
            body = {"metadata": {"name": f"noise-{index}"}}
            self.call("POST", "/api/v1/namespaces", body, resource="namespaces")
        value = base64.b64encode(b"n" * NOISE_BYTES).decode()

        def create(index: int) -> None:
            secret = {"metadata": {"name": f"unrelated-{index}"}, "data": {"blob": value}}
            path = f"/api/v1/namespaces/noise-{index % NOISE_NAMESPACES}/secrets"
            self.call("POST", path, secret, resource="secrets")

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(create, range(count)))

    def delete_stores(self) -> None:
        """Delete every TaskStore of the benchmark's namespace in one request."""
        self.call("DELETECOLLECTION", STORES, resource="taskstores")

    def watched(self, path: str, resource: str, view: Callable[[dict[str, Any]], Any]) -> "Watched":
        """``path``'s objects by name, as ``view`` sees them, kept current by a watch."""
        listed = self.call("LIST", path, resource=resource)
        return Watched(self.plane, path, listed, view)

    def mark_ready(self, statefulset: dict[str, Any]) -> bool:
        """Report a new StatefulSet ready, as a kubelet would; True once it is."""
        if (statefulset.get("status") or {}).get("readyReplicas"):
            return True
        name = statefulset["metadata"]["name"]
        path = f"{APPS}/statefulsets/{name}/status"
        body = {"status": READY_STATEFULSET_STATUS}
        self.call("PATCH", path, body, resource="statefulsets", subresource="status")
        return False


class Watched:
    """A collection's objects by name, each as ``view`` sees it, kept current by a watch.

    The benchmark follows the cluster this way rather than by listing it again and again,
    which would cost the API server (whose 2 cores the operator shares) more than the
    operator's own requests do.
    """

    def __init__(
        self,
        plane: ControlPlane,
        path: str,
        listed: dict[str, Any],
        view: Callable[[dict[str, Any]], Any],
    ) -> None:
        self.views = {item["metadata"]["name"]: view(item) for item in listed["items"]}
        self._changed = threading.Condition()
        version = listed["metadata"]["resourceVersion"]
        thread = threading.Thread(target=self._follow, args=(plane, path, version, view))
        thread.daemon = True  # the stream ends with the control plane
        thread.start()

    def _follow(
        self, plane: ControlPlane, path: str, version: str, view: Callable[[dict[str, Any]], Any]
    ) -> None:
        with contextlib.suppress(OSError):  # the control plane stopped
            for event in plane.watch(path, version):
                if event["type"] == "BOOKMARK":
                    continue
                item = event["object"]
                name = item["metadata"]["name"]
                with self._changed:
                    if event["type"] == "DELETED":
                        self.views.pop(name, None)
                    else:
                        self.views[name] = view(item)
                    self._changed.notify_all()

    def wait(self, what: str, holds: Callable[[dict[str, Any]], bool], timeout: float) -> float:
        """Seconds until ``holds(views)``; raises after ``timeout``."""
        started = time.monotonic()
        with self._changed:
            if not self._changed.wait_for(lambda: holds(self.views), timeout):
                raise TimeoutError(f"no {what} within {timeout:g} s")
        return time.monotonic() - started


def ready_with(agents: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a TaskStore is Ready with all its ``agents`` injected."""

    def ready(store: dict[str, Any]) -> bool:
        status = store.get("status") or {}
        return (status.get("agents") or {}).get("injected") == agents and any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )

    return ready


def injected(deployment: dict[str, Any]) -> bool:
    """Whether a Deployment's pod template carries a store's injection."""
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return CONFIG_HASH_ANNOTATION in annotations


def install_operator(plane: ControlPlane) -> Path:
    """Apply the plain manifests (the CRD, the operator's ServiceAccount, its least-privilege
    RBAC); a kubeconfig holding that ServiceAccount's token, as the operator's pod has.

    No kubelet runs, so the manifests' Deployment never starts a pod: the benchmark runs
    the operator itself, with that token.
    """
    applied = plane.kubectl("apply", "--server-side", "-f", str(MANIFEST_PATH))
    if applied.returncode != 0:
        raise RuntimeError(f"kubectl apply -f {MANIFEST_PATH} failed: {applied.stderr}")
    wait_for(
        "the TaskStore CRD served",
        lambda: plane.request("GET", f"{STORES}?limit=1")[0] == 200,
        timeout=60,
        interval=0.2,
    )
    return plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each named process has used so far, this one's as ``bench``."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in pids.items():
        # Fields after the command name (which may hold spaces); utime and stime are 14, 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        used[name] = (int(fields[11]) + int(fields[12])) / ticks
    own = resource.getrusage(resource.RUSAGE_SELF)
    used["bench"] = own.ru_utime + own.ru_stime
    return used


def cpu_between(before: dict[str, float], after: dict[str, float]) -> str:
    """The CPU seconds each process used between two readings of ``cpu_seconds``."""
    return ", ".join(f"{name} {after[name] - before[name]:.1f}" for name in before)


class ResidentMemory:
    """Samples a process's resident memory twice a second, naming the phase of the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.phase = "start-up and convergence"
        self.peak_mb = 0.0
        self.peak_phase = self.phase
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()

    def _sample(self) -> None:
        with contextlib.suppress(OSError):  # the process ended
            while True:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:") and int(line.split()[1]) / 1024 > self.peak_mb:
                        self.peak_mb, self.peak_phase = int(line.split()[1]) / 1024, self.phase
                time.sleep(0.5)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def delta(
    before: dict[RequestKind, float],
    after: dict[RequestKind, float],
    own: collections.Counter[RequestKind],
) -> dict[RequestKind, float]:
    """Requests served between two readings, less the benchmark's own."""
    served = requests_between(before, after)
    return {k: n - own.get(k, 0) for k, n in served.items() if n > own.get(k, 0)}


def by_verb(requests: dict[RequestKind, float]) -> str:
    verbs: collections.Counter[str] = collections.Counter()
    for kind, count in requests.items():
        verbs[kind.verb] += int(count)
    return ", ".join(f"{verb} {count}" for verb, count in sorted(verbs.items())) or "none"


def writes(requests: dict[RequestKind, float]) -> str:
    shown = [
        f"{kind.verb} {kind.resource}{'/' + kind.subresource if kind.subresource else ''} {int(n)}"
        for kind, n in sorted(requests.items())
        if kind.is_write
    ]
    return ", ".join(shown) or "none"


def settled(plane: ControlPlane, bench: Bench, quiet: float = 3.0) -> dict[RequestKind, float]:
    """Request totals once no write has been served for ``quiet`` seconds (30 s at most)."""
    reading = plane.request_totals()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(quiet)
        latest = plane.request_totals()
        if not any(k.is_write for k in delta(reading, latest, collections.Counter())):
            return latest
        reading = latest
    return reading


def run(stores: int, agents: int, unrelated: int, steady: float) -> int:
    """Run the benchmark and print its figures; the exit code is 0 (figures, not a test)."""
    binaries = find_binaries(build=True)
    controllers = ("garbage-collector-controller", "namespace-controller")
    scratch = tempfile.TemporaryDirectory(prefix="bench-operator-")
    with ControlPlane(binaries, controllers=controllers) as plane, scratch as tmp:
        kubeconfig = install_operator(plane)
        bench = Bench(plane)
        started = time.monotonic()
        bench.create_unrelated_secrets(unrelated)
        bench.create_objects(stores, agents)
        took = time.monotonic() - started
        print(
            f"created {stores} TaskStores, {stores * agents} Deployments and {unrelated} "
            f"unrelated Secrets in {took:.1f} s"
        )
        stores_ready = bench.watched(STORES, "taskstores", ready_with(agents))
        bench.watched(f"{APPS}/statefulsets", "statefulsets", bench.mark_ready)
        before = plane.request_totals()
        bench.own.clear()
        with running_operator(kubeconfig, Path(tmp) / "operator.log") as operator:
            pids = {Path(f"/proc/{pid}/comm").read_text().strip(): pid for pid in plane.process_ids}
            pids["operator"] = operator.pid
            memory = ResidentMemory(operator.pid)
            cpu_before = cpu_seconds(pids)
            converge = stores_ready.wait(
                "convergence", lambda views: sum(views.values()) == stores, timeout=600
            )
            # Trailing Events of the last reconciles still belong to the convergence.
            cpu_converged = cpu_seconds(pids)
            converged_at = settled(plane, bench)
            memory.phase = "steady"
            convergence = delta(before, converged_at, bench.own)
            bench.own.clear()
            time.sleep(steady)
            steady_at = plane.request_totals()
            steady_requests = delta(converged_at, steady_at, bench.own)
            # Shown before the cleanup, which may take long.
            print(
                f"\n{stores} TaskStores x {agents} Deployments ({', '.join(BACKENDS)} in turn), "
                f"{unrelated} unrelated Secrets of {NOISE_BYTES // 1024} KB"
            )
            print(f"  converged in        {converge:.1f} s (target < {CONVERGE_TARGET_S:g} s)")
            print(f"  convergence         {by_verb(convergence)}")
            print(f"    CPU seconds       {cpu_between(cpu_before, cpu_converged)}")
            print(f"    writes            {writes(convergence)}")
            print(f"  steady {steady:g} s        {by_verb(steady_requests)}")
            print(f"    writes            {writes(steady_requests)} (target: none)", flush=True)
            injections = bench.watched(f"{APPS}/deployments", "deployments", injected)
            memory.phase = "cleanup"
            bench.own.clear()
            deleting = time.monotonic()
            cpu_deleting = cpu_seconds(pids)
            bench.delete_stores()
            stores_ready.wait("every TaskStore gone", lambda views: not views, timeout=600)
            injections.wait("no injection", lambda views: not any(views.values()), timeout=600)
            cleanup = time.monotonic() - deleting
            cpu_cleaned = cpu_seconds(pids)
            cleanup_requests = delta(steady_at, plane.request_totals(), bench.own)
            rss = peak_rss_mb(operator.pid)
    steady_writes = sum(n for kind, n in steady_requests.items() if kind.is_write)
    print(f"  cleanup in          {cleanup:.1f} s (target < {CLEANUP_TARGET_S:g} s)")
    print(f"  cleanup             {by_verb(cleanup_requests)}")
    print(f"    CPU seconds       {cpu_between(cpu_deleting, cpu_cleaned)}")
    print(
        f"  operator peak RSS   {rss:.0f} MB (target < {RSS_TARGET_MB:g} MB); sampled: "
        f"{memory.peak_mb:.0f} MB during {memory.peak_phase}"
    )
    missed = (
        (converge >= CONVERGE_TARGET_S)
        + (steady_writes > 0)
        + (cleanup >= CLEANUP_TARGET_S)
        + (rss >= RSS_TARGET_MB)
    )
    print(f"targets missed: {missed}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", type=int, default=1000, help="TaskStores to create")
    parser.add_argument("--agents", type=int, default=5, help="labelled Deployments per store")
    parser.add_argument(
        "--unrelated-secrets",
        type=int,
        default=5000,
        help="2 KB Secrets in other namespaces, which the operator must not hold",
    )
    parser.add_argument("--steady", type=float, default=60, help="seconds of steady state")
    args = parser.parse_args()
    return run(args.stores, args.agents, args.unrelated_secrets, args.steady)


if __name__ == "__main__":
    sys.exit(main())
