"""Locate, build and cache the control-plane binaries (kube-apiserver, etcd, ...).

The versions are pinned by the Go wrapper modules in ``scripts/testbins`` (k8s, etcd)
and ``scripts/testbins/helm`` (helm); their go.mod files are the single source of truth.
Built binaries are cached under ``~/.cache/teal-taskstore/bin/<k8s-version>-<hash>/``,
where the hash covers both modules' go.mod and go.sum and the Go version, so a pin bump
or a new Go toolchain builds a fresh set and an unchanged tree reuses the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from taskstore_dev.paths import TESTBINS_DIR

HELM_MODULE_DIR = TESTBINS_DIR / "helm"

KUBERNETES_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
HELM_MODULE = "helm.sh/helm/v3"

# Where Go's official tarball installs itself; often not on PATH in CI images.
DEFAULT_GO_LOCATIONS = (Path("/usr/local/go/bin/go"),)

# Measured on 2 cores (see docs/control-plane.md); shown so nobody thinks the build hung.
COLD_BUILD_MINUTES = 9

REQUIRED_NAMES = ("kube-apiserver", "etcd", "kubectl")
OPTIONAL_NAMES = ("kube-controller-manager", "helm")
ALL_NAMES = REQUIRED_NAMES + OPTIONAL_NAMES

Progress = Callable[[str], None]


class BinariesError(RuntimeError):
    """The control-plane binaries are neither available nor buildable."""


class GoNotFoundError(BinariesError):
    """No Go toolchain is installed, so the binaries cannot be built."""


class BuildError(BinariesError):
    """``go build`` failed; the message names the module, version and go output."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the executables a control plane and the e2e tests use."""

    kube_apiserver: Path
    etcd: Path
    kubectl: Path
    kube_controller_manager: Path | None
    helm: Path | None


@dataclass(frozen=True)
class Pins:
    """Module versions pinned by the wrapper go.mod files."""

    kubernetes: str
    etcd: str
    helm: str

    @property
    def kubernetes_minor(self) -> str:
        """The minor version number of Kubernetes, e.g. ``"36"`` for v1.36.3."""
        return self.kubernetes.lstrip("v").split(".")[1]


def read_pins() -> Pins:
    """Read the pinned module versions from the committed go.mod files."""
    return Pins(
        kubernetes=_required_version(TESTBINS_DIR / "go.mod", KUBERNETES_MODULE),
        etcd=_required_version(TESTBINS_DIR / "go.mod", ETCD_MODULE),
        helm=_required_version(HELM_MODULE_DIR / "go.mod", HELM_MODULE),
    )


def _required_version(go_mod: Path, module: str) -> str:
    try:
        text = go_mod.read_text()
    except FileNotFoundError as error:
        raise BinariesError(
            f"{go_mod} is missing; run from a checkout of teal-taskstore"
        ) from error
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}[ \t]+(v\S+)", text, re.MULTILINE)
    if match is None:
        raise BinariesError(f"{go_mod} does not require {module}")
    return match.group(1)


def find_go() -> Path:
    """Return the Go toolchain to build with, or raise :class:`GoNotFoundError`."""
    on_path = shutil.which("go")
    if on_path:
        return Path(on_path)
    for candidate in DEFAULT_GO_LOCATIONS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise GoNotFoundError(
        "no Go toolchain found: install Go >= 1.26 (https://go.dev/dl) "
        "or set KUBEBUILDER_ASSETS to a directory with envtest binaries"
    )


def go_version(go: Path) -> str:
    """Return ``go env GOVERSION``, e.g. ``go1.26.8``."""
    result = subprocess.run(
        [str(go), "env", "GOVERSION"], env=_go_env(), capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def cache_root() -> Path:
    """Return the directory that holds every cached set of binaries."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "teal-taskstore" / "bin"


def cache_dir(go: Path | None = None) -> Path:
    """Return the bin dir for the current pins and Go version (it may not exist yet)."""
    digest = hashlib.sha256()
    for module_dir in (TESTBINS_DIR, HELM_MODULE_DIR):
        for name in ("go.mod", "go.sum"):
            digest.update((module_dir / name).read_bytes())
    digest.update(go_version(go or find_go()).encode())
    return cache_root() / f"{read_pins().kubernetes}-{digest.hexdigest()[:12]}"


def _is_complete(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ALL_NAMES)


def _env_overrides() -> dict[str, Path]:
    """Binaries named by TEST_ASSET_<NAME> or found in KUBEBUILDER_ASSETS, as envtest does."""
    found: dict[str, Path] = {}
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    for name in ALL_NAMES:
        explicit = os.environ.get("TEST_ASSET_" + name.upper().replace("-", "_"))
        if explicit:
            found[name] = Path(explicit)
        elif assets and os.access(Path(assets) / name, os.X_OK):
            found[name] = Path(assets) / name
    return found


def uses_external_binaries() -> bool:
    """Tell whether the environment supplies kube-apiserver, etcd and kubectl itself."""
    overrides = _env_overrides()
    return all(name in overrides for name in REQUIRED_NAMES)


def find_binaries(*, build: bool, progress: Progress = print) -> Binaries:
    """Return the binaries to use: environment overrides first, then the cache.

    With ``build=True`` a missing cache is built (this takes a while the first time);
    otherwise :class:`BinariesError` is raised. When the environment supplies the
    required binaries nothing is built, and kube-controller-manager and helm are taken
    from the environment or the cache when present, else left out.
    """
    overrides = _env_overrides()
    paths = dict(overrides)
    if not uses_external_binaries():
        cached = cache_dir()
        if not _is_complete(cached):
            if not build:
                raise BinariesError(
                    f"control-plane binaries are not built ({cached} is missing); "
                    "run scripts/control-plane build"
                )
            build_binaries(progress=progress)
        paths = {name: cached / name for name in ALL_NAMES} | overrides
    else:
        with contextlib.suppress(GoNotFoundError):
            cached = cache_dir()
            if _is_complete(cached):
                paths = {name: cached / name for name in OPTIONAL_NAMES} | overrides
    for name, path in paths.items():
        if not os.access(path, os.X_OK):
            raise BinariesError(f"{name}: {path} is not an executable file")
    return Binaries(
        kube_apiserver=paths["kube-apiserver"],
        etcd=paths["etcd"],
        kubectl=paths["kubectl"],
        kube_controller_manager=paths.get("kube-controller-manager"),
        helm=paths.get("helm"),
    )


def build_binaries(*, progress: Progress = print, force: bool = False) -> Path:
    """Build every binary into the cache dir (or reuse it) and return that dir.

    Concurrent callers wait on a lock, and the result only appears once complete, so an
    interrupted build is never mistaken for a finished one.
    """
    go = find_go()
    target = cache_dir(go)
    pins = read_pins()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / ".build.lock"):
        if _is_complete(target) and not force:
            progress(f"reusing control-plane binaries in {target}")
            return target
        progress(
            f"building the control plane (Kubernetes {pins.kubernetes}, etcd {pins.etcd}, "
            f"helm {pins.helm}) with {go_version(go)}; the first build takes about "
            f"{COLD_BUILD_MINUTES} minutes on 2 cores, later builds reuse the cache"
        )
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            started = time.monotonic()
            for step in _build_steps(pins):
                _run_build_step(go, step, staging, started, progress)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        progress(f"built the control plane in {_elapsed(started)}: {target}")
        return target


@dataclass(frozen=True)
class _BuildStep:
    binary: str
    package: str
    module: str
    version: str
    module_dir: Path
    ldflags: tuple[str, ...]


def _build_steps(pins: Pins) -> list[_BuildStep]:
    build_date = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time())))
    )
    # Without these the server reports v0.0.0-master: the proxy's zips carry no git data.
    # Helm reads the server's gitVersion for kubeVersion checks, so they matter.
    kubernetes_ldflags = tuple(
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in (
            ("gitVersion", pins.kubernetes),
            ("gitMajor", "1"),
            ("gitMinor", pins.kubernetes_minor),
            ("gitTreeState", "clean"),
            # The proxy does not record k8s' commit; empty beats the "$Format:%H$" placeholder.
            ("gitCommit", ""),
            ("buildDate", build_date),
        )
    )
    # Offline `helm template` assumes this Kubernetes version (upstream's default is 1.20).
    helm_ldflags = (
        f"-X helm.sh/helm/v3/internal/version.version={pins.helm}",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={pins.kubernetes_minor}",
        "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={pins.kubernetes_minor}",
    )
    kubernetes_steps = [
        _BuildStep(
            binary=name,
            package=f"{KUBERNETES_MODULE}/cmd/{name}",
            module=KUBERNETES_MODULE,
            version=pins.kubernetes,
            module_dir=TESTBINS_DIR,
            ldflags=kubernetes_ldflags,
        )
        for name in ("kube-apiserver", "kube-controller-manager", "kubectl")
    ]
    return [
        *kubernetes_steps,
        _BuildStep("etcd", ETCD_MODULE, ETCD_MODULE, pins.etcd, TESTBINS_DIR, ()),
        _BuildStep(
            "helm", f"{HELM_MODULE}/cmd/helm", HELM_MODULE, pins.helm, HELM_MODULE_DIR, helm_ldflags
        ),
    ]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOWORK="off",  # a go.work in a parent directory would take over the build
        GOTOOLCHAIN="local",  # never try to download another toolchain
        CGO_ENABLED="0",  # static binaries, like upstream's release builds
        # readonly: the committed go.sum must be complete; this replaces any user GOFLAGS
        # such as -mod=vendor that would break the build.
        GOFLAGS="-mod=readonly -buildvcs=false",
    )
    return env


def _run_build_step(
    go: Path, step: _BuildStep, out_dir: Path, started: float, progress: Progress
) -> None:
    progress(f"[{_elapsed(started)}] building {step.binary} ({step.module} {step.version})")
    command = [
        str(go),
        "build",
        "-trimpath",
        "-ldflags",
        " ".join(("-s", "-w", *step.ldflags)),
        "-o",
        str(out_dir / step.binary),
        step.package,
    ]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            command, cwd=step.module_dir, env=_go_env(), stdout=output, stderr=subprocess.STDOUT
        )
        try:
            while True:
                try:
                    process.wait(timeout=60)
                    break
                except subprocess.TimeoutExpired:
                    progress(f"[{_elapsed(started)}] still building {step.binary} ...")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            output.seek(0)
            tail = "\n".join(output.read().splitlines()[-30:])
            raise BuildError(
                f"building {step.binary} from {step.module} {step.version} failed "
                f"(go build exited with {process.returncode}); last lines of its output:\n{tail}"
            )


def _elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
