"""pytest fixtures over the local control plane: one per session, a namespace per test.

Under ``CI=true`` nothing skips: a missing toolchain or a failed build fails the tests
that need the control plane, naming what failed. Elsewhere, without Go and without
prebuilt binaries, those tests skip with one line that says how to enable them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import pytest
from kubernetes import config as kube_config
from kubernetes.client import ApiClient

from .binaries import Binaries, BinariesError, GoNotFoundError, Progress, find_binaries
from .controlplane import ControlPlane, ControlPlaneError
from .waiting import wait_for

InstallCrd = Callable[[Mapping[str, Any]], None]


def in_ci() -> bool:
    """Whether the run is in CI, where the e2e tier must never be skipped."""
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test outside CI; fail it under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: e2e tests are never skipped)", pytrace=False)
    pytest.skip(reason)


def wait_until(what: str, condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout``."""
    try:
        wait_for(what, condition, timeout)
    except TimeoutError as error:
        pytest.fail(str(error))


def load_binaries(progress: Progress) -> Binaries:
    """Find or build the binaries, applying the skipping rule of the e2e tier."""
    try:
        return find_binaries(build=True, progress=progress)
    except GoNotFoundError as error:
        unavailable(f"e2e tests need the control plane, but {error}")
    except BinariesError as error:
        pytest.fail(f"control-plane binaries: {error}", pytrace=False)


@pytest.fixture(scope="session")
def envtest_binaries(request: pytest.FixtureRequest) -> Binaries:
    """The control-plane binaries, built on first use (progress is shown live)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    live_output = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()

    def progress(line: str) -> None:
        print(f"control-plane: {line}", file=sys.stderr, flush=True)

    with live_output:
        return load_binaries(progress)


@pytest.fixture(scope="session")
def control_plane(envtest_binaries: Binaries) -> Iterator[ControlPlane]:
    """One control plane for the whole test session, started when a test first needs it."""
    plane = ControlPlane(envtest_binaries)
    try:
        plane.start()
    except ControlPlaneError as error:
        pytest.fail(f"the control plane did not start: {error}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[ApiClient]:
    """A Kubernetes ``ApiClient`` authenticated as the admin user."""
    client: ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(control_plane.kubeconfig)
    )
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (in the background) afterwards."""
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{readable or 'test'}-{secrets.token_hex(3)}"
    control_plane.request_json(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    try:
        yield name
    finally:
        status, body = control_plane.request("DELETE", f"/api/v1/namespaces/{name}")
        if status not in (200, 202, 404):
            raise ControlPlaneError(
                f"deleting namespace {name} failed with {status}: {body[:300]!r}"
            )


@pytest.fixture(scope="session")
def install_crd(control_plane: ControlPlane) -> InstallCrd:
    """A function that creates or replaces a CRD and waits until it is Established."""
    return control_plane.install_crd
