"""Golden files: a TaskStore in, the managed Redis objects and the agent apply body out.

Each directory under ``tests/operator/golden`` is a case: ``taskstore.yaml`` (and, if
the case needs its own, ``deployment.yaml``) in; ``redis.yaml`` (managed Redis only)
and ``agent-patch.yaml`` out. Review a rendering change in the diff of these files;
regenerate them with ``UPDATE_GOLDEN=1 python -m pytest tests/operator``.
"""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from taskstore_operator.api.validation import parse_taskstore
from taskstore_operator.plan.agents import select_containers
from taskstore_operator.plan.backend import password_fingerprint
from taskstore_operator.render.agent_env import (
    agent_env,
    config_hash,
    injects_library,
    password_secret_ref,
    render_agent_deployment_patch,
)
from taskstore_operator.render.redis import (
    render_redis_configmap,
    render_redis_networkpolicy,
    render_redis_secret,
    render_redis_service,
    render_redis_statefulset,
)

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(path.name for path in GOLDEN.iterdir() if (path / "taskstore.yaml").is_file())
INPUTS = {"taskstore.yaml", "deployment.yaml"}
HEADER = (
    "# Rendered by tests/operator/unit/test_golden_manifests.py; UPDATE_GOLDEN=1 rewrites it.\n"
)
# Fixed stand-ins for what the reconciler reads from the cluster.
PASSWORD = SecretStr("golden-password-not-a-secret")
LIBRARY_IMAGE = "ghcr.io/tealagents/taskstore-operator:0.1.0"
SECRET_UID = "0b6a3d0e-1f7c-4e9a-8a51-6c2d9e0f1a22"


class GoldenDumper(yaml.SafeDumper):
    """Writes multi-line strings (redis.conf) as literal blocks, as a person would."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


GoldenDumper.add_representer(str, _represent_str)


def dump(*documents: Any) -> str:
    return HEADER + yaml.dump_all(documents, Dumper=GoldenDumper, sort_keys=False)


def load(case: str, name: str) -> dict[str, Any]:
    path = GOLDEN / case / name
    document: dict[str, Any] = yaml.safe_load(
        (path if path.is_file() else GOLDEN / name).read_text()
    )
    return document


def render_case(case: str) -> dict[str, str]:
    """File name -> expected content, for one case."""
    store = parse_taskstore(load(case, "taskstore.yaml"))
    # The password Secret as the reconciler reads it (generated or passwordSecretRef).
    secret = render_redis_secret(store, PASSWORD)
    secret["metadata"]["uid"] = SECRET_UID
    fingerprint = (
        password_fingerprint(store, secret).fingerprint
        if password_secret_ref(store) is not None
        else None
    )
    env = agent_env(store)
    deployment = load(case, "deployment.yaml")
    containers = select_containers(deployment).names
    library_image = LIBRARY_IMAGE if injects_library(store) else None
    patch = render_agent_deployment_patch(
        deployment,
        store,
        containers,
        env,
        config_hash(env, fingerprint, library_image),
        library_image,
    )
    outputs = {"agent-patch.yaml": dump(patch)}
    if store.managed_redis is not None:
        assert fingerprint is not None
        outputs["redis.yaml"] = dump(
            render_redis_secret(store, PASSWORD),
            render_redis_configmap(store),
            render_redis_service(store),
            render_redis_statefulset(store, fingerprint),
            render_redis_networkpolicy(store),
        )
    return outputs


def test_there_are_cases_for_every_backend() -> None:
    assert {"memory", "managed-ephemeral", "managed-persistent", "external", "custom"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    outputs = render_case(case)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        for stale in {p.name for p in (GOLDEN / case).iterdir()} - INPUTS - outputs.keys():
            (GOLDEN / case / stale).unlink()
        for name, text in outputs.items():
            (GOLDEN / case / name).write_text(text)
    present = {path.name for path in (GOLDEN / case).iterdir()} - INPUTS
    assert present == outputs.keys(), "run UPDATE_GOLDEN=1 python -m pytest tests/operator"
    for name, text in outputs.items():
        assert (GOLDEN / case / name).read_text() == text, (
            f"{case}/{name} differs; review, then UPDATE_GOLDEN=1 python -m pytest tests/operator"
        )
