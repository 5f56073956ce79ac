"""The runtime around the pure reconcile: the work queue, seen versions, strays, command line."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import kopf
import pytest

from support.polling import eventually
from taskstore_operator import __main__ as main_module
from taskstore_operator.__main__ import parse_args, report_unknown_namespaces, watched_namespaces
from taskstore_operator.runtime import queue as queue_module
from taskstore_operator.runtime.queue import Key, ReconcileQueue
from taskstore_operator.runtime.seen import MAX_VERSIONS, SeenVersions
from taskstore_operator.runtime.strays import StrayDeployments
from taskstore_operator.topology import Scope


@pytest.mark.parametrize(
    ("flags", "environment", "expected"),
    [
        ([], None, []),
        ([], "", []),
        ([], "a, b,,", ["a", "b"]),
        (["x"], "a,b", ["x"]),
        (["x", "y"], None, ["x", "y"]),
    ],
)
def test_watched_namespaces(flags: list[str], environment: str | None, expected: list[str]) -> None:
    assert watched_namespaces(flags, environment) == expected


def test_command_line_defaults_and_flags() -> None:
    defaults = parse_args([])
    assert (defaults.namespace, defaults.metrics_port, defaults.health_port) == ([], 8080, 8081)
    given = parse_args(["--namespace=a", "--namespace", "b", "--metrics-port=0"])
    assert (given.namespace, given.metrics_port) == (["a", "b"], 0)


class Recorder:
    """Work that records each key, can be held open, and fails when told to."""

    def __init__(self) -> None:
        self.calls: list[Key] = []
        self.running: set[Key] = set()
        self.overlaps = 0
        self.release = asyncio.Event()
        self.failures_left = 0

    async def __call__(self, key: Key) -> None:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        self.calls.append(key)
        try:
            await self.release.wait()
            if self.failures_left:
                self.failures_left -= 1
                raise RuntimeError("API down")
        finally:
            self.running.discard(key)


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Recorder], ReconcileQueue]]:
    tasks: list[asyncio.Task[None]] = []

    def start(work: Recorder) -> ReconcileQueue:
        queue = ReconcileQueue(work, workers=2)
        tasks.append(asyncio.create_task(queue.run()))
        return queue

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_events_for_a_waiting_key_collapse_into_one_reconcile(
    started: Callable[[Recorder], ReconcileQueue],
) -> None:
    work = Recorder()
    work.release.set()
    queue = started(work)

    for kind in ("TaskStore", "Deployment", "Secret"):
        queue.enqueue(("ns", "a"), kind)
    queue.enqueue(("ns", "b"), "TaskStore")

    async def idle() -> bool:
        return queue.depth == 0 and len(work.calls) >= 2

    await eventually(idle)
    assert sorted(work.calls) == [("ns", "a"), ("ns", "b")]


async def test_an_event_during_a_reconcile_runs_it_once_more_never_concurrently(
    started: Callable[[Recorder], ReconcileQueue],
) -> None:
    work = Recorder()
    queue = started(work)
    queue.enqueue(("ns", "a"), "TaskStore")

    async def running() -> bool:
        return bool(work.running)

    await eventually(running)
    queue.enqueue(("ns", "a"), "Deployment")
    queue.enqueue(("ns", "a"), "Deployment")
    work.release.set()

    async def twice() -> bool:
        return len(work.calls) == 2 and queue.depth == 0

    await eventually(twice)
    assert work.overlaps == 0


async def test_an_event_the_store_has_seen_enqueues_nothing(
    started: Callable[[Recorder], ReconcileQueue],
) -> None:
    work = Recorder()
    work.release.set()
    queue = started(work)

    queue.enqueue(("ns", "a"), "Deployment", lambda: True)
    queue.enqueue(("ns", "b"), "Deployment", lambda: False)

    async def idle() -> bool:
        return queue.depth == 0 and len(work.calls) >= 1

    await eventually(idle)
    assert work.calls == [("ns", "b")]


@pytest.mark.parametrize(("seen_by_then", "runs"), [(True, 1), (False, 2)])
async def test_an_event_during_a_reconcile_is_checked_when_it_ends(
    started: Callable[[Recorder], ReconcileQueue], seen_by_then: bool, runs: int
) -> None:
    # The watch may bring the echo of a write before the writer has remembered it.
    work = Recorder()
    queue = started(work)
    queue.enqueue(("ns", "a"), "TaskStore")

    async def running() -> bool:
        return bool(work.running)

    await eventually(running)
    remembered = False
    queue.enqueue(("ns", "a"), "Deployment", lambda: remembered)
    remembered = seen_by_then
    work.release.set()

    async def done() -> bool:
        return queue.depth == 0 and not work.running

    await eventually(done)
    await asyncio.sleep(0.05)
    assert len(work.calls) == runs


def test_seen_versions_match_one_store_and_one_version_once() -> None:
    seen = SeenVersions()
    seen.record(("ns", "a"), {"metadata": {"uid": "u", "resourceVersion": "1"}})
    seen.record(("ns", "b"), {"metadata": {"uid": "u", "resourceVersion": "1"}})
    seen.record(("ns", "a"), {"metadata": {"uid": "u", "resourceVersion": "2"}})
    seen.record(("ns", "a"), {})  # no uid, no version: nothing to remember

    assert not seen.seen(("ns", "a"), "u", "3")
    assert not seen.seen(("ns", "c"), "u", "1")
    assert seen.seen(("ns", "a"), "u", "1")
    assert not seen.seen(("ns", "a"), "u", "1")
    assert seen.seen(("ns", "b"), "u", "1")
    assert seen.seen(("ns", "a"), "u", "2")


def test_seen_versions_forget_deleted_objects_and_keep_few_versions() -> None:
    seen = SeenVersions()
    for version in range(MAX_VERSIONS + 1):
        seen.record(("ns", "a"), {"metadata": {"uid": "u", "resourceVersion": str(version)}})
    seen.record(("ns", "a"), {"metadata": {"uid": "gone", "resourceVersion": "1"}})
    seen.forget("gone")

    assert not seen.seen(("ns", "a"), "u", "0")
    assert seen.seen(("ns", "a"), "u", str(MAX_VERSIONS))
    assert not seen.seen(("ns", "a"), "gone", "1")


def test_stray_deployments_follow_the_watch() -> None:
    strays = StrayDeployments()
    strays.update("ns", "d", "a")
    strays.update("ns", "e", "a")
    assert strays.of(("ns", "a")) == {"d", "e"}

    strays.update("ns", "d", "b")
    strays.update("ns", "e", None)
    assert strays.of(("ns", "a")) == frozenset()
    assert strays.of(("ns", "b")) == {"d"}
    assert strays.of(("other", "b")) == frozenset()


async def test_a_failed_reconcile_is_retried(
    started: Callable[[Recorder], ReconcileQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "RETRY_BASE_SECONDS", 0.01)
    work = Recorder()
    work.failures_left = 2
    work.release.set()
    queue = started(work)

    queue.enqueue(("ns", "a"), "TaskStore")

    async def recovered() -> bool:
        return len(work.calls) == 3 and queue.depth == 0

    await eventually(recovered)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, {"standalone": True, "peering_name": None, "clusterwide": True, "namespaces": []}),
        (
            {"TASKSTORE_WATCH_NAMESPACES": "a,b", "TASKSTORE_PEERING": "ops"},
            {
                "standalone": False,
                "peering_name": "ops",
                "clusterwide": False,
                "namespaces": ["a", "b"],
            },
        ),
    ],
)
def test_main_runs_kopf_standalone_or_with_peering(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: dict[str, object]
) -> None:
    for name in ("TASKSTORE_WATCH_NAMESPACES", "TASKSTORE_PEERING"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    runs: list[dict[str, object]] = []
    monkeypatch.setattr(kopf, "run", lambda **kwargs: runs.append(kwargs))
    monkeypatch.setattr(kopf, "configure", lambda **_: None)
    checked: list[str] = []

    class EveryNamespaceExists:
        def namespace_exists(self, name: str) -> bool:
            checked.append(name)
            return True

    monkeypatch.setattr(main_module, "connect", EveryNamespaceExists)
    ensured: list[Scope] = []

    class NoOtherInstall:
        def __init__(self, client: object) -> None:
            pass

        def read(self, scope: Scope) -> tuple[list[object], list[object]]:
            return [], []

        def ensure(self, scope: Scope) -> None:
            ensured.append(scope)

    monkeypatch.setattr(main_module, "PeeringApi", NoOtherInstall)

    main_module.main(["--metrics-port=0", "--health-port=9999"])

    [run] = runs
    assert {key: run[key] for key in expected} == expected
    assert run["liveness_endpoint"] == "http://0.0.0.0:9999/healthz"
    assert (run["priority"] is None) == ("TASKSTORE_PEERING" not in environment)
    assert checked == expected["namespaces"]
    assert ensured == [Scope(tuple(checked), environment.get("TASKSTORE_PEERING"))]


def test_unknown_watched_namespaces_are_reported_by_name(caplog: pytest.LogCaptureFixture) -> None:
    existing = {"agents"}
    with caplog.at_level(logging.ERROR, logger="taskstore_operator"):
        unknown = report_unknown_namespaces(["agents", "typo-agents"], existing.__contains__)
    assert unknown == ["typo-agents"]
    assert "watched namespace 'typo-agents' does not exist" in caplog.text
    assert "'agents'" not in caplog.text


def test_the_library_image_defaults_to_the_operators_own_of_this_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(main_module.LIBRARY_IMAGE_ENV, raising=False)
    assert parse_args([]).library_image == "ghcr.io/tealagents/taskstore-operator:0.1.0"
    assert parse_args(["--library-image", "r.example/lib:2"]).library_image == "r.example/lib:2"
    monkeypatch.setenv(main_module.LIBRARY_IMAGE_ENV, "r.example/lib:3")
    assert parse_args([]).library_image == "r.example/lib:3"
