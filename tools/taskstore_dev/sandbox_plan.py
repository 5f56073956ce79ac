"""The agent sandbox's plan, with no I/O: from a pod template and the objects read, what to run.

:func:`plan_sandbox` takes the Deployment's pod template, the Secrets and ConfigMaps read
for the container and the ``--map`` flags, and returns the local directories standing for
its ``emptyDir`` volumes, the init containers' work as local commands, and the
container's environment as the kubelet would build it, paths and Service addresses made
local. :mod:`taskstore_dev.sandbox` does the reading and the running.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from taskstore_operator.api.contract import ENV_REDIS_HOST, ENV_REDIS_PORT, TASKSTORE_LABEL
from teal_taskstore.framework import COPY_LIBRARY_COMMAND

Manifest = dict[str, Any]

# The local shell's variables of this prefix are dropped: the framework and the library
# read them, and only the container's should reach the process.
DROPPED_LOCAL_PREFIX: Final = "TA_"
# The kubelet's stand-ins for what only a scheduled pod has.
POD_IP: Final = "127.0.0.1"
POD_NAME_SUFFIX: Final = "-sandbox"
DEFAULT_CONTAINER_ANNOTATION: Final = "kubectl.kubernetes.io/default-container"
_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_FIELD_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")


class SandboxError(RuntimeError):
    """The Deployment cannot be run as asked; the message names what and why."""


@dataclass(frozen=True)
class HostMap:
    """``--map HOST:PORT=LOCALHOST:PORT``: a Service address and the local one standing for it."""

    host: str
    port: int
    local_host: str
    local_port: int

    @classmethod
    def parse(cls, text: str) -> HostMap:
        """Parse ``HOST:PORT=LOCALHOST:PORT``; :class:`SandboxError` names the flag and form."""
        service, equals, local = text.partition("=")
        try:
            if not equals:
                raise ValueError
            host, port = _address(service)
            local_host, local_port = _address(local)
        except ValueError:
            raise SandboxError(
                f"--map {text!r}: expected HOST:PORT=LOCALHOST:PORT, e.g. "
                "redis-tasks-redis.agents.svc:6379=127.0.0.1:6390"
            ) from None
        return cls(host, port, local_host, local_port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}={self.local_host}:{self.local_port}"


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    number = int(port)
    if not host or not 0 < number < 65536:
        raise ValueError(text)
    return host, number


@dataclass(frozen=True)
class ObjectsRead:
    """The Secrets and ConfigMaps read for the container: name -> key -> decoded value."""

    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    """The Secrets and ConfigMaps a container's environment names."""

    secrets: frozenset[str]
    config_maps: frozenset[str]


@dataclass(frozen=True)
class LocalMount:
    """A mount of the container and the local directory standing for it."""

    volume: str
    mount_path: str
    local: Path


@dataclass(frozen=True)
class InitStep:
    """An init container's work, as a local command."""

    container: str
    argv: tuple[str, ...]


@dataclass
class SandboxPlan:
    """What the sandbox does: directories, init steps, the environment, what it said.

    ``shown`` is each variable as printed: its value, or for a value that comes from a
    Secret, the reference; ``notes`` are what is skipped or unsupported.
    """

    container: str
    directories: list[Path]
    mounts: list[LocalMount]
    init_steps: list[InitStep]
    env: dict[str, str]
    shown: dict[str, str]
    notes: list[str]


def select_container(template: Manifest, name: str | None) -> Manifest:
    """The container ``name``, else the default-container annotation's, else the first."""
    containers: list[Manifest] = template.get("spec", {}).get("containers") or []
    if not containers:
        raise SandboxError("the pod template has no containers")
    annotations = template.get("metadata", {}).get("annotations") or {}
    wanted = name or annotations.get(DEFAULT_CONTAINER_ANNOTATION) or containers[0]["name"]
    for container in containers:
        if container["name"] == wanted:
            return container
    known = ", ".join(c["name"] for c in containers)
    raise SandboxError(f"--container {wanted!r}: the pod template has no such container ({known})")


def references(container: Manifest) -> References:
    """The Secrets and ConfigMaps the container's ``env`` and ``envFrom`` read."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            secrets.add(source["secretRef"]["name"])
        if "configMapRef" in source:
            config_maps.add(source["configMapRef"]["name"])
    for variable in container.get("env") or []:
        value_from = variable.get("valueFrom") or {}
        if "secretKeyRef" in value_from:
            secrets.add(value_from["secretKeyRef"]["name"])
        if "configMapKeyRef" in value_from:
            config_maps.add(value_from["configMapKeyRef"]["name"])
    return References(frozenset(secrets), frozenset(config_maps))


def plan_sandbox(
    template: Manifest,
    *,
    namespace: str,
    deployment: str,
    container_name: str | None,
    objects: ObjectsRead,
    maps: Sequence[HostMap],
    root: Path,
    python: str,
    node_name: str = "localhost",
) -> SandboxPlan:
    """The whole plan for one container of ``template``; no I/O."""
    container = select_container(template, container_name)
    notes: list[str] = []
    volumes = {v["name"]: v for v in template.get("spec", {}).get("volumes") or []}
    mounts = _local_mounts(container, volumes, root, notes)
    steps = _init_steps(template, volumes, root, python, notes)
    directories = sorted({root / name for name, v in volumes.items() if "emptyDir" in v})
    pod = _pod_fields(template, namespace, deployment, node_name)
    env, shown = resolve_env(container, objects, pod, notes)
    env, shown = map_paths(env, shown, mounts)
    env, shown = map_hosts(env, shown, maps, namespace, notes)
    labels = template.get("metadata", {}).get("labels") or {}
    if TASKSTORE_LABEL not in labels:
        notes.append(f"the pod template has no {TASKSTORE_LABEL} label: no TaskStore injected")
    return SandboxPlan(container["name"], directories, mounts, steps, env, shown, notes)


def _local_mounts(
    container: Manifest, volumes: Mapping[str, Manifest], root: Path, notes: list[str]
) -> list[LocalMount]:
    mounts: list[LocalMount] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})
        if "emptyDir" not in volume:
            kind = next((k for k in volume if k != "name"), "missing")
            notes.append(
                f"volume {mount['name']} ({kind}) at {mount['mountPath']} is not provided: "
                "the sandbox makes emptyDir volumes only"
            )
            continue
        local = root / mount["name"] / mount.get("subPath", "")
        mounts.append(LocalMount(mount["name"], mount["mountPath"].rstrip("/") or "/", local))
    return mounts


def _init_steps(
    template: Manifest,
    volumes: Mapping[str, Manifest],
    root: Path,
    python: str,
    notes: list[str],
) -> list[InitStep]:
    """teal-taskstore's ``copy-library`` init containers as local commands; others noted."""
    steps: list[InitStep] = []
    for init in template.get("spec", {}).get("initContainers") or []:
        argv = [*(init.get("command") or []), *(init.get("args") or [])]
        interpreter, *arguments = argv or [""]
        # Any python of the image: the local one stands for it.
        if (
            Path(interpreter).name.startswith("python")
            and len(argv) == len(COPY_LIBRARY_COMMAND)
            and tuple(arguments[:-1]) == COPY_LIBRARY_COMMAND[1:-1]
        ):
            destination = _local_path(arguments[-1], _local_mounts(init, volumes, root, notes))
            if destination is not None:
                steps.append(InitStep(init["name"], (python, *arguments[:-1], destination)))
                continue
        notes.append(
            f"init container {init['name']} ({init.get('image', '?')}) skipped: the sandbox "
            "runs only teal-taskstore's copy-library into an emptyDir"
        )
    return steps


def _local_path(path: str, mounts: Sequence[LocalMount]) -> str | None:
    """``path`` with its mount point replaced by the local directory; None if under none."""
    best: LocalMount | None = None
    for mount in mounts:
        under = path == mount.mount_path or path.startswith(mount.mount_path.rstrip("/") + "/")
        if under and (best is None or len(mount.mount_path) > len(best.mount_path)):
            best = mount
    if best is None:
        return None
    return str(best.local) + path[len(best.mount_path.rstrip("/")) :]


@dataclass(frozen=True)
class PodFields:
    """What ``fieldRef`` reads of the pod the sandbox stands for."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    service_account: str
    node_name: str


def _pod_fields(template: Manifest, namespace: str, deployment: str, node_name: str) -> PodFields:
    metadata = template.get("metadata", {})
    spec = template.get("spec", {})
    return PodFields(
        name=f"{deployment}{POD_NAME_SUFFIX}",
        namespace=namespace,
        labels=metadata.get("labels") or {},
        annotations=metadata.get("annotations") or {},
        service_account=spec.get("serviceAccountName") or "default",
        node_name=node_name,
    )


def _field_value(path: str, pod: PodFields) -> str | None:
    plain = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "spec.serviceAccountName": pod.service_account,
        "spec.nodeName": pod.node_name,
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path in plain:
        return plain[path]
    subscript = _FIELD_SUBSCRIPT.fullmatch(path)
    if subscript:
        source = pod.labels if subscript[1] == "labels" else pod.annotations
        return source.get(subscript[2], "")
    return None


def expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: a defined name is replaced, ``$$`` is ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return defined.get(match[1], match[0])

    return _REFERENCE.sub(replace, value)


def resolve_env(
    container: Manifest, objects: ObjectsRead, pod: PodFields, notes: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The container's variables as the kubelet sets them, and each as it may be shown."""
    env: dict[str, str] = {}
    shown: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, found in (
            ("secretRef", objects.secrets),
            ("configMapRef", objects.config_maps),
        ):
            ref = source.get(kind)
            if ref is None:
                continue
            data = found.get(ref["name"])
            if data is None:
                if not ref.get("optional"):
                    raise SandboxError(f"envFrom: {_kind_name(kind)} {ref['name']} not found")
                continue
            for key, value in data.items():
                name = prefix + key
                if not _ENV_NAME.fullmatch(name):
                    notes.append(f"envFrom {ref['name']}: key {key!r} is not a variable name")
                    continue
                env[name] = value
                shown[name] = (
                    f"<- secret {ref['name']}, key {key}" if kind == "secretRef" else f"= {value}"
                )
    secret_derived = {name for name, text in shown.items() if text.startswith("<-")}
    for variable in container.get("env") or []:
        name = variable["name"]
        value_from = variable.get("valueFrom")
        if value_from is None:
            raw = variable.get("value", "")
            env[name] = expand(raw, env)
            uses_secret = any(f"$({other})" in raw for other in secret_derived)
            shown[name] = "<- a value built from a Secret" if uses_secret else f"= {env[name]}"
            if uses_secret:
                secret_derived.add(name)
            continue
        resolved = _value_from(name, value_from, objects, pod, notes)
        if resolved is None:
            env.pop(name, None)
            shown.pop(name, None)
            continue
        env[name], shown[name] = resolved
        if shown[name].startswith("<- secret"):
            secret_derived.add(name)
        else:
            secret_derived.discard(name)
    return env, shown


def _kind_name(kind: str) -> str:
    return "Secret" if kind.startswith("secret") else "ConfigMap"


def _value_from(
    name: str, value_from: Manifest, objects: ObjectsRead, pod: PodFields, notes: list[str]
) -> tuple[str, str] | None:
    """A ``valueFrom``'s value and how to show it; None when it sets nothing."""
    for kind, found in (
        ("secretKeyRef", objects.secrets),
        ("configMapKeyRef", objects.config_maps),
    ):
        ref = value_from.get(kind)
        if ref is None:
            continue
        data = found.get(ref["name"])
        what = f"{name}: {_kind_name(kind)} {ref['name']}"
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None
            missing = "not found" if data is None else f"has no key {ref['key']!r}"
            raise SandboxError(f"{what} {missing}")
        value = data[ref["key"]]
        if kind == "secretKeyRef":
            return value, f"<- secret {ref['name']}, key {ref['key']}"
        return value, f"= {value}"
    if "fieldRef" in value_from:
        path = value_from["fieldRef"]["fieldPath"]
        field_value = _field_value(path, pod)
        if field_value is None:
            notes.append(f"{name} not set: fieldRef {path} is not supported by the sandbox")
            return None
        return field_value, f"= {field_value}"
    kind = next(iter(value_from), "?")
    notes.append(f"{name} not set: valueFrom.{kind} is not supported by the sandbox")
    return None


def map_paths(
    env: Mapping[str, str], shown: Mapping[str, str], mounts: Sequence[LocalMount]
) -> tuple[dict[str, str], dict[str, str]]:
    """Each path under a mount point (also in ``:``-separated lists) made local."""
    mapped = dict(env)
    shown_mapped = dict(shown)
    for name, value in env.items():
        parts = value.split(os.pathsep)
        local = [_local_path(part, mounts) or part for part in parts]
        if local != parts:
            mapped[name] = os.pathsep.join(local)
            if not shown[name].startswith("<-"):
                shown_mapped[name] = f"= {mapped[name]}  (in the pod: {value})"
    return mapped, shown_mapped


def canonical_host(host: str, namespace: str) -> str:
    """A Service host name as ``name.namespace.svc``; any other host lowercased."""
    host = host.lower().rstrip(".").removesuffix(".cluster.local")
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.svc"
    if len(parts) == 2:
        return f"{host}.svc"
    return host


def map_hosts(
    env: Mapping[str, str],
    shown: Mapping[str, str],
    maps: Sequence[HostMap],
    namespace: str,
    notes: list[str],
) -> tuple[dict[str, str], dict[str, str]]:
    """``TA_REDIS_HOST``/``TA_REDIS_PORT`` naming a mapped Service point at its local address."""
    mapped = dict(env)
    shown_mapped = dict(shown)
    host, port = env.get(ENV_REDIS_HOST), env.get(ENV_REDIS_PORT)
    for host_map in maps:
        matches = (
            host is not None
            and port == str(host_map.port)
            and canonical_host(host, namespace) == canonical_host(host_map.host, namespace)
        )
        if not matches:
            seen = f"{host}:{port}" if host is not None else "nothing"
            notes.append(f"--map {host_map}: {ENV_REDIS_HOST}:{ENV_REDIS_PORT} is {seen}")
            continue
        mapped[ENV_REDIS_HOST] = host_map.local_host
        mapped[ENV_REDIS_PORT] = str(host_map.local_port)
        for name, was in ((ENV_REDIS_HOST, host), (ENV_REDIS_PORT, port)):
            shown_mapped[name] = f"= {mapped[name]}  (in the pod: {was}; --map)"
    return mapped, shown_mapped


def describe(plan: SandboxPlan, deployment: str, namespace: str) -> list[str]:
    """The container, its volumes and the init containers run, one line each."""
    lines = [f"deployment {namespace}/{deployment}, container {plan.container}"]
    lines += [f"volume {m.volume} at {m.mount_path} -> {m.local}" for m in plan.mounts]
    lines += [f"init container {s.container}: {' '.join(s.argv)}" for s in plan.init_steps]
    return lines


def describe_env(plan: SandboxPlan) -> list[str]:
    """The environment and the notes, one line each; never a Secret's value."""
    lines = [f"env {name} {text}" for name, text in plan.shown.items()]
    return lines + [f"note: {note}" for note in plan.notes]


def local_environment(
    container_env: Mapping[str, str], base: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """A process' environment: the local one less ``TA_*``, then the container's."""
    kept = {k: v for k, v in base.items() if not k.startswith(DROPPED_LOCAL_PREFIX)}
    return {**kept, **container_env}
