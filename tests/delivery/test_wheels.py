"""Each wheel holds its product: the library alone, the operator alone, no development tooling.

Both wheels are built offline (``pip wheel --no-build-isolation``) from a clean copy of
their sources, so nothing is written into the repository and no stale ``build/`` leaks in.
"""

import email.parser
import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from pathlib import Path
from typing import Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from taskstore_dev.paths import REPO_ROOT

IGNORED: Final = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
LIBRARY_PACKAGE: Final = REPO_ROOT / "library" / "teal_taskstore"
OPERATOR_PACKAGE: Final = REPO_ROOT / "operator" / "taskstore_operator"


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    """Build the one wheel of ``source``, a project directory, into ``out``."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--quiet", "--wheel-dir", str(out), str(source)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def source_files(package: Path) -> set[str]:
    """Every file of a package's source tree, as wheel entry names."""
    return {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def contents(wheel: zipfile.ZipFile) -> tuple[set[str], set[str]]:
    """The wheel's top-level names (metadata aside) and its files outside the metadata."""
    files = {name for name in wheel.namelist() if ".dist-info/" not in name}
    return {name.split("/", 1)[0] for name in files}, files


def metadata(wheel: zipfile.ZipFile, name: str) -> str:
    """One file of the wheel's .dist-info directory."""
    (found,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(found).decode()


def runtime_requirements(info: Message) -> set[str]:
    """The normalized names of the distributions an install without extras pulls in."""
    requirements = [Requirement(raw) for raw in info.get_all("Requires-Dist") or []]
    return {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is None or r.marker.evaluate({"extra": ""})
    }


@pytest.fixture(scope="module")
def library_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("library-source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "library", source / "library", ignore=IGNORED)
    return build_wheel(source, tmp_path_factory.mktemp("library-wheel"))


@pytest.fixture(scope="module")
def operator_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("operator-source") / "operator"
    shutil.copytree(REPO_ROOT / "operator", source, ignore=IGNORED)
    return build_wheel(source, tmp_path_factory.mktemp("operator-wheel"))


def test_the_library_wheel_holds_the_library_alone(library_wheel: zipfile.ZipFile) -> None:
    top_level, files = contents(library_wheel)
    assert top_level == {"teal_taskstore"}
    # Every source file, the Lua scripts and py.typed included, and nothing else.
    assert files == source_files(LIBRARY_PACKAGE)
    assert "teal_taskstore/py.typed" in files
    lua = {path for path in source_files(LIBRARY_PACKAGE) if path.endswith(".lua")}
    assert lua <= files
    assert metadata(library_wheel, "top_level.txt").split() == ["teal_taskstore"]
    info = email.parser.Parser().parsestr(metadata(library_wheel, "METADATA"))
    assert info["Name"] == "teal-taskstore"
    assert runtime_requirements(info) == {"pydantic", "redis"}
    # The operator comes with the `operator` extra, at the library's own version.
    assert f'teal-taskstore-operator=={info["Version"]}; extra == "operator"' in (
        info.get_all("Requires-Dist") or []
    )
    assert "entry_points.txt" not in {n.rsplit("/", 1)[-1] for n in library_wheel.namelist()}


def test_the_operator_wheel_holds_the_operator_alone(operator_wheel: zipfile.ZipFile) -> None:
    top_level, files = contents(operator_wheel)
    assert top_level == {"taskstore_operator"}
    assert files == source_files(OPERATOR_PACKAGE)
    assert "taskstore_operator/py.typed" in files
    for tooling in ("envtest", "demo", "pytest_plugin", "generate"):
        assert not [name for name in files if tooling in name], tooling
    info = email.parser.Parser().parsestr(metadata(operator_wheel, "METADATA"))
    assert info["Name"] == "teal-taskstore-operator"
    assert f"teal-taskstore=={info['Version']}" in (info.get_all("Requires-Dist") or [])
    assert runtime_requirements(info) == {
        "teal-taskstore",
        "kopf",
        "kubernetes",
        "prometheus-client",
        "pyyaml",
    }
    entry_points = metadata(operator_wheel, "entry_points.txt")
    assert "taskstore-operator = taskstore_operator.__main__:main" in entry_points
