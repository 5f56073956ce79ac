"""``python -m taskstore_dev.demo``: the whole product on a local control plane.

Builds (or reuses) the control-plane binaries, starts etcd, kube-apiserver and
kube-controller-manager, installs the TaskStore CRD, runs the operator, applies the
samples of ``deploy/samples/``, then prints the TaskStores the way ``kubectl get`` does
and what was injected into the sample agent (environment, init container, volume, mount),
and runs ``scripts/agent-sandbox`` once on that agent against a local ``redis-server``
standing for the managed Redis (with the password of its generated Secret), printing the
task the agent stored. It keeps running until Ctrl-C (``--once`` prints and exits); every
process it started is stopped on the way out.
"""

import argparse
import base64
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Final

import redis
import yaml

from taskstore_dev.envtest import BinariesError, ControlPlane, ControlPlaneError
from taskstore_dev.envtest.binaries import find_binaries
from taskstore_dev.envtest.controlplane import READY_STATEFULSET_STATUS
from taskstore_dev.envtest.operator_process import OperatorProcess, running_operator
from taskstore_dev.envtest.waiting import wait_for
from taskstore_dev.local_redis import LocalRedisError, local_redis_server
from taskstore_dev.paths import AGENT_SANDBOX, DEPLOY_CRD_PATH, REPO_ROOT, SAMPLES_DIR
from taskstore_operator.api.contract import CONFIG_HASH_ANNOTATION, REDIS_PORT
from teal_taskstore.framework import LIBRARY_VOLUME

NAMESPACE: Final = "agents"
SAMPLE_AGENT: Final = "planner"
MANAGED_STORE: Final = "redis-tasks"
STEPS: Final = 7
# Seconds one step may take; generous, for a busy machine.
STEP_TIMEOUT: Final = 90.0


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


def step(number: int, text: str) -> None:
    """Print the heading of one step."""
    print(f"[{number}/{STEPS}] {text}", flush=True)


def kubectl_json(plane: ControlPlane, *args: str) -> Any:
    """``kubectl ... -o json`` as Python data, or ``None`` when the object does not exist."""
    result = plane.kubectl(*args, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def checked(result: subprocess.CompletedProcess[str], what: str) -> str:
    """The command's output, or :class:`DemoError` with its error output."""
    if result.returncode != 0:
        raise DemoError(f"{what} failed: {result.stderr.strip()}")
    return result.stdout


def mark_statefulset_ready(plane: ControlPlane, name: str) -> None:
    """Report the managed Redis as ready, as a kubelet would once its pod runs."""
    wait_for(
        f"statefulset/{name}",
        lambda: kubectl_json(plane, "get", "statefulset", name, "-n", NAMESPACE) is not None,
        STEP_TIMEOUT,
    )
    status = {"status": READY_STATEFULSET_STATUS}
    patch = ["--subresource=status", "--type=merge", "-p", json.dumps(status)]
    result = plane.kubectl("patch", "statefulset", name, "-n", NAMESPACE, *patch)
    checked(result, f"marking statefulset/{name} ready")


def all_ready(plane: ControlPlane) -> bool:
    """Whether there are TaskStores in the namespace and every one is Ready."""
    stores = kubectl_json(plane, "get", "taskstores", "-n", NAMESPACE) or {"items": []}
    return bool(stores["items"]) and all(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in store.get("status", {}).get("conditions", [])
        )
        for store in stores["items"]
    )


def describe_env(deployment: Mapping[str, Any]) -> list[str]:
    """The agent's TA_* variables, one line each; a secret reference shown as such."""
    lines: list[str] = []
    template = deployment["spec"]["template"]
    for container in template["spec"]["containers"]:
        lines.append(f"  container {container['name']}:")
        for variable in container.get("env", []):
            if not variable["name"].startswith("TA_"):
                continue
            source = variable.get("valueFrom", {}).get("secretKeyRef")
            shown = (
                f"<- secret {source['name']}, key {source['key']}"
                if source
                else f"= {variable.get('value', '')}"
            )
            lines.append(f"    {variable['name']} {shown}")
    config_hash = template["metadata"].get("annotations", {}).get(CONFIG_HASH_ANNOTATION)
    lines.append(f"  pod template annotation {CONFIG_HASH_ANNOTATION} = {config_hash}")
    return lines


def describe_library(deployment: Mapping[str, Any]) -> list[str]:
    """The library's init container, volume and read-only mounts in the pod template."""
    spec = deployment["spec"]["template"]["spec"]
    lines: list[str] = []
    for init in spec.get("initContainers") or []:
        if init["name"] == LIBRARY_VOLUME:
            lines.append(f"  init container {init['name']}: image {init['image']}")
            lines.append(f"    command {' '.join(init['command'])}")
    for volume in spec.get("volumes") or []:
        if volume["name"] == LIBRARY_VOLUME:
            lines.append(f"  volume {volume['name']}: emptyDir {json.dumps(volume['emptyDir'])}")
    for container in spec["containers"]:
        for mount in container.get("volumeMounts") or []:
            if mount["name"] == LIBRARY_VOLUME:
                how = "read-only" if mount.get("readOnly") else "read-write"
                lines.append(
                    f"  container {container['name']} mounts it {how} at {mount['mountPath']}"
                )
        for variable in container.get("env") or []:
            if variable["name"] == "TA_PERSISTENCE_MODULE":
                lines.append(f"    module path TA_PERSISTENCE_MODULE = {variable['value']}")
    return lines or ["  (nothing: the library is not injected)"]


def managed_password(plane: ControlPlane) -> str:
    """The managed Redis' generated password, read from its Secret (never printed)."""
    name = f"{MANAGED_STORE}-redis-auth"
    secret = kubectl_json(plane, "get", "secret", name, "-n", NAMESPACE)
    if secret is None or "password" not in (secret.get("data") or {}):
        raise DemoError(f"secret/{name} has no key password")
    return base64.b64decode(secret["data"]["password"]).decode()


def run_agent_sandbox(plane: ControlPlane) -> None:
    """Run the demo agent in the sandbox of the sample agent, on a local redis-server."""
    service = f"{MANAGED_STORE}-redis.{NAMESPACE}.svc:{REDIS_PORT}"
    password = managed_password(plane)
    try:
        with local_redis_server(password) as port:
            print(
                f"      a local redis-server on 127.0.0.1:{port} stands for {service}, with the "
                f"password of secret/{MANAGED_STORE}-redis-auth",
                flush=True,
            )
            sandbox = [
                f"--kubeconfig={plane.kubeconfig}", "--namespace", NAMESPACE,
                "--deployment", SAMPLE_AGENT, "--map", f"{service}=127.0.0.1:{port}",
                "--", sys.executable, "-m", "taskstore_dev.demo_agent",
            ]  # fmt: skip
            shown = [a for a in sandbox if not a.startswith("--kubeconfig")]
            print(f"\n$ {AGENT_SANDBOX.relative_to(REPO_ROOT)} {' '.join(shown)}", flush=True)
            result = subprocess.run(
                [str(AGENT_SANDBOX), *sandbox],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=STEP_TIMEOUT,
                check=False,
            )
            print(result.stdout, end="", flush=True)
            if result.returncode != 0:
                raise DemoError(f"the agent sandbox exited with code {result.returncode}")
            client = redis.Redis(
                host="127.0.0.1", port=port, password=password, decode_responses=True
            )
            keys = sorted(str(key) for key in client.keys("*"))
            client.close()
        print(f"the local redis-server held {len(keys)} keys: {', '.join(keys)}", flush=True)
    except LocalRedisError as error:
        raise DemoError(str(error)) from None


def run(once: bool) -> None:
    """Run the demo; raise :class:`DemoError` (or a build/start error) on failure."""
    step(1, "control-plane binaries: kube-apiserver, etcd, kube-controller-manager, kubectl, helm")
    print("      built from the upstream Go modules on first use (about 9 minutes on 2 cores),")
    print("      then reused from ~/.cache/teal-taskstore/bin", flush=True)
    binaries = find_binaries(build=True, progress=lambda line: print(f"      {line}", flush=True))

    step(2, "starting etcd, kube-apiserver and kube-controller-manager on loopback")
    started = time.monotonic()
    with (
        ControlPlane(binaries) as plane,
        tempfile.TemporaryDirectory(prefix="taskstore-demo-") as scratch,
    ):
        print(f"      ready in {time.monotonic() - started:.1f} s; KUBECONFIG={plane.kubeconfig}")

        step(3, f"installing the TaskStore CRD ({DEPLOY_CRD_PATH.relative_to(REPO_ROOT)})")
        plane.install_crd(yaml.safe_load(DEPLOY_CRD_PATH.read_text()))

        log_path = Path(scratch) / "operator.log"
        step(4, f"starting the operator: python -m taskstore_operator (log: {log_path})")
        with running_operator(plane.kubeconfig, log_path) as operator:
            try:
                show_the_samples(plane, operator, once)
            except (DemoError, TimeoutError) as error:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise DemoError(f"{error}\nthe end of the operator's log:\n{tail}") from None


def show_the_samples(plane: ControlPlane, operator: OperatorProcess, once: bool) -> None:
    """Apply the samples, wait for them, print them; then wait for Ctrl-C unless ``once``."""
    step(5, f"applying {SAMPLES_DIR.relative_to(REPO_ROOT)}/ in namespace {NAMESPACE}")
    checked(plane.kubectl("create", "namespace", NAMESPACE), "creating the namespace")
    checked(plane.kubectl("apply", "-n", NAMESPACE, "-f", str(SAMPLES_DIR)), "kubectl apply")
    print("      no kubelet runs here, so no pod starts: the demo reports the managed")
    print("      Redis StatefulSet ready itself, as the tests do", flush=True)
    mark_statefulset_ready(plane, f"{MANAGED_STORE}-redis")

    step(6, "waiting until every TaskStore is Ready")

    def converged() -> bool:
        if (code := operator.poll()) is not None:
            raise DemoError(f"the operator exited with code {code}")
        return all_ready(plane)

    wait_for("every TaskStore to be Ready", converged, STEP_TIMEOUT)
    print(f"\n$ kubectl get taskstores -n {NAMESPACE} -o wide")
    table = plane.kubectl("get", "taskstores", "-n", NAMESPACE, "-o", "wide")
    print(checked(table, "kubectl get taskstores"))
    agent = kubectl_json(plane, "get", "deployment", SAMPLE_AGENT, "-n", NAMESPACE)
    print(f"environment injected into deployment/{SAMPLE_AGENT}:")
    print("\n".join(describe_env(agent)))
    print(f"library injected into deployment/{SAMPLE_AGENT}:")
    print("\n".join(describe_library(agent)), flush=True)

    step(7, f"running an agent process as deployment/{SAMPLE_AGENT}'s container would")
    run_agent_sandbox(plane)
    if once:
        return
    print(f"\nexport KUBECONFIG={plane.kubeconfig}   # to look around with kubectl")
    print("running until Ctrl-C; everything started here stops then", flush=True)
    wait_for_interrupt()


def wait_for_interrupt() -> None:
    """Block until SIGINT or SIGTERM."""
    stopping = False

    def stop(_signal: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m taskstore_dev.demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="print the result and exit")
    args = parser.parse_args(argv)
    try:
        run(once=args.once)
    except (DemoError, TimeoutError, BinariesError, ControlPlaneError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    print("stopped: operator, kube-controller-manager, kube-apiserver and etcd", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
