"""Fixtures for the delivery tests: the pinned helm, and the chart rendered into objects."""

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from taskstore_dev.envtest.binaries import Binaries
from taskstore_dev.envtest.pytest_plugin import unavailable
from taskstore_dev.paths import CHART_DIR

CI_VALUES: Final = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
SCENARIOS: Final = {path.name.removesuffix("-values.yaml"): path for path in CI_VALUES}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Helm:
    """The control plane's pinned helm, with its cache and config kept in a scratch directory."""

    binary: Path
    home: Path

    def run(
        self, *arguments: str, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run helm (not checked: inspect the result)."""
        env = os.environ | {
            name: str(self.home / name.lower())
            for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return subprocess.run(
            [str(self.binary), *arguments],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )

    def template(
        self, *arguments: str, values: Sequence[Path] = (), namespace: str = "ops"
    ) -> list[Manifest]:
        """Render the chart (release ``rel``) into its objects; fail the test if helm fails."""
        files = [argument for path in values for argument in ("--values", str(path))]
        result = self.run(
            "template", "rel", str(CHART_DIR), "--namespace", namespace, *files, *arguments
        )
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def helm(envtest_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (v3.21.4) built with the control plane."""
    if envtest_binaries.helm is None:
        unavailable("helm was not found among the control-plane binaries")
    return Helm(envtest_binaries.helm, tmp_path_factory.mktemp("helm-home"))


Render = Callable[..., list[Manifest]]


def only(objects: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of ``kind`` (and ``name``) in ``objects``."""
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def of_kind(objects: Sequence[Manifest], kind: str) -> list[Manifest]:
    """The objects of ``kind``."""
    return [obj for obj in objects if obj["kind"] == kind]


def container(objects: Sequence[Manifest]) -> Mapping[str, Any]:
    """The operator container of the rendered Deployment."""
    deployment = only(objects, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    first: Mapping[str, Any] = containers[0]
    return first
