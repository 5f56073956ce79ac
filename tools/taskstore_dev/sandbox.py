"""``scripts/agent-sandbox``: run a local process as a Deployment's container would see it.

Reads the Deployment's pod template from the API server, then does locally what the
kubelet would do for one container:

* each ``emptyDir`` volume the container mounts is a directory under a temporary root;
* each init container that runs teal-taskstore's ``copy-library`` (the one the operator
  injects) runs locally, with this interpreter (or ``--init-python``), into that directory;
  other init containers are reported and skipped (their images are not here);
* the container's environment is built as the kubelet builds it: ``envFrom``, then
  ``env`` in order with ``$(VAR)`` references expanded; ``secretKeyRef`` and
  ``configMapKeyRef`` read through the API; ``fieldRef`` for the pod's name, namespace,
  labels, annotations, service account, node and IPs (the pod's name is
  ``<deployment>-sandbox``, its IPs ``127.0.0.1``); ``resourceFieldRef`` is not supported
  (reported, the variable left unset);
* values under a mount point (``TA_PERSISTENCE_MODULE``) point into the local directory;
* ``--map HOST:PORT=LOCALHOST:PORT`` replaces ``TA_REDIS_HOST``/``TA_REDIS_PORT`` when they
  name that Service (``redis-tasks-redis.agents.svc:6379``), so the managed Redis can be
  a local ``redis-server`` or a ``kubectl port-forward``.

The command then runs with that environment on top of the local one, less every ``TA_*``
variable of the local shell. What was done is printed on standard error, Secret values
never: a variable read from a Secret is shown as its reference.

The pure part is :mod:`taskstore_dev.sandbox_plan`; this module reads the objects, runs the
init containers and the command.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from taskstore_dev.sandbox_plan import (
    HostMap,
    Manifest,
    ObjectsRead,
    References,
    SandboxError,
    SandboxPlan,
    describe,
    describe_env,
    local_environment,
    plan_sandbox,
    references,
    select_container,
)

PRINT_PREFIX = "agent-sandbox: "


def read_template(api: Any, namespace: str, deployment: str) -> Manifest:
    """The Deployment's pod template, as the API server sends it."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        found = client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace)
    except ApiException as error:
        raise SandboxError(
            f"reading deployment {namespace}/{deployment}: {_reason(error)}"
        ) from None
    template: Manifest = api.sanitize_for_serialization(found)["spec"]["template"]
    return template


def read_objects(api: Any, namespace: str, wanted: References) -> ObjectsRead:
    """The Secrets and ConfigMaps named, decoded; a missing one is left out (404)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api)
    secrets: dict[str, dict[str, str]] = {}
    config_maps: dict[str, dict[str, str]] = {}
    for name in sorted(wanted.secrets):
        try:
            data = core.read_namespaced_secret(name, namespace).data or {}
        except ApiException as error:
            if error.status == 404:
                continue
            raise SandboxError(f"reading secret {namespace}/{name}: {_reason(error)}") from None
        secrets[name] = {
            key: base64.b64decode(value).decode("utf-8", "surrogateescape")
            for key, value in data.items()
        }
    for name in sorted(wanted.config_maps):
        try:
            config_maps[name] = dict(core.read_namespaced_config_map(name, namespace).data or {})
        except ApiException as error:
            if error.status == 404:
                continue
            raise SandboxError(f"reading configmap {namespace}/{name}: {_reason(error)}") from None
    return ObjectsRead(secrets, config_maps)


def _reason(error: Any) -> str:
    # The status and reason only: an API error's body may echo what was sent.
    return f"{error.status} {error.reason}"


def run_init_steps(plan: SandboxPlan, say: Callable[[str], None]) -> None:
    """Make the volume directories and run each init step; stop at the first failure."""
    for directory in [*plan.directories, *(mount.local for mount in plan.mounts)]:
        directory.mkdir(parents=True, exist_ok=True)
    for step in plan.init_steps:
        result = subprocess.run(
            step.argv, capture_output=True, text=True, check=False, env=local_environment({})
        )
        for line in result.stdout.splitlines():
            say(f"  {line}")
        if result.returncode != 0:
            raise SandboxError(
                f"init container {step.container} failed ({result.returncode}): "
                f"{result.stderr.strip()[-2000:]}"
            )


def run_command(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command``; SIGINT and SIGTERM are passed on; its exit code."""
    try:
        process = subprocess.Popen(list(command), env=dict(env))
    except OSError as error:
        raise SandboxError(f"cannot run {command[0]!r}: {error.strerror}") from None

    def forward(signal_number: int, _frame: FrameType | None) -> None:
        process.send_signal(signal_number)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parser() -> argparse.ArgumentParser:
    """The command line of ``scripts/agent-sandbox``."""
    usage = (
        "agent-sandbox --namespace NS --deployment NAME [--container C] "
        "[--map HOST:PORT=LOCALHOST:PORT ...] [--kubeconfig K] -- COMMAND..."
    )
    arguments = argparse.ArgumentParser(
        prog="agent-sandbox",
        usage=usage,
        description="Run a local process as a Deployment's container would see it "
        "(see docs/agent-sandbox.md).",
    )
    arguments.add_argument("--namespace", "-n", required=True)
    arguments.add_argument("--deployment", required=True)
    arguments.add_argument("--container", help="default: the default-container annotation's, "
                           "else the first")  # fmt: skip
    arguments.add_argument(
        "--map", action="append", default=[], type=HostMap.parse, metavar="HOST:PORT=LOCAL:PORT",
        help="a Service address in TA_REDIS_HOST/TA_REDIS_PORT and the local one to use",
    )  # fmt: skip
    arguments.add_argument("--kubeconfig", help="default: $KUBECONFIG, else ~/.kube/config")
    arguments.add_argument(
        "--init-python", default=sys.executable,
        help="the Python that runs copy-library (with teal-taskstore installed); "
        "default: this one",
    )  # fmt: skip
    arguments.add_argument("--keep", action="store_true", help="keep the volume directories")
    arguments.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    arguments.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; the command's exit code, or 2 when the sandbox fails."""
    command_line = parser()
    try:
        args = command_line.parse_args(argv)
    except SandboxError as error:
        command_line.error(str(error))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        command_line.error("no command: put it after --")

    def say(line: str) -> None:
        if not args.quiet:
            print(PRINT_PREFIX + line, file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="agent-sandbox-"))
    try:
        plan = _plan(args, root)
        for line in describe(plan, args.deployment, args.namespace):
            say(line)
        run_init_steps(plan, say)
        for line in describe_env(plan):
            say(line)
        say(f"running: {' '.join(command)}")
        return run_command(command, local_environment(plan.env))
    except SandboxError as error:
        print(f"{PRINT_PREFIX}error: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _plan(args: argparse.Namespace, root: Path) -> SandboxPlan:
    from kubernetes import config

    if args.kubeconfig is not None and not Path(args.kubeconfig).is_file():
        raise SandboxError(f"--kubeconfig {args.kubeconfig}: no such file")
    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
    except (config.ConfigException, OSError) as error:
        raise SandboxError(f"kubeconfig: {error}") from None
    with api:
        template = read_template(api, args.namespace, args.deployment)
        container = select_container(template, args.container)
        objects = read_objects(api, args.namespace, references(container))
    return plan_sandbox(
        template,
        namespace=args.namespace,
        deployment=args.deployment,
        container_name=args.container,
        objects=objects,
        maps=args.map,
        root=root,
        python=args.init_python,
        node_name=socket.gethostname(),
    )


if __name__ == "__main__":
    sys.exit(main())
