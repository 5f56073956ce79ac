"""The chart's names: every rendered name fits its Kubernetes rule for every value the schema
accepts, and values that would render broken objects are refused.

The boundary test takes its lengths and patterns from ``values.schema.json`` itself, so a
schema change moves the boundaries it checks.
"""

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, Final

import pytest
import yaml

from taskstore_dev.paths import CHART_DIR

from .conftest import Helm, Manifest, only

SCHEMA: Final = json.loads((CHART_DIR / "values.schema.json").read_text())
PROPERTIES: Final = SCHEMA["properties"]

# Kubernetes' rules (k8s.io/apimachinery/pkg/util/validation).
DNS1035_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
LABEL_VALUE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Helm's own rule for release names (helm/pkg/chartutil: at most 53 characters).
RELEASE_NAME_MAX: Final = 53
# Kinds whose names are Services' DNS-1035 labels; every other kind takes a DNS subdomain.
LABEL_NAMED_KINDS: Final = {"Service"}


def _schema_node(path: str) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA
    for part in path.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def _boundary_strings(path: str) -> list[str]:
    """The longest values the schema accepts at ``path``, with '-' and '.' where a cut lands.

    Each is checked against the schema's own pattern, so the test cannot drift into values
    the chart never receives.
    """
    node = _schema_node(path)
    # Without a bound in the schema, the longest name Kubernetes has: 253 characters.
    longest = int(node.get("maxLength", 253))
    pattern = re.compile(node.get("pattern", ".*"))
    candidates = ["x" * longest, "a" + "-b" * ((longest - 1) // 2) + "c" * ((longest - 1) % 2)]
    # A '-' at each position a truncation to 63 - len("-metrics") or 63 could stop at.
    for cut in (53, 54, 55, 62):
        if cut < longest - 1:
            candidates.append("a" * cut + "-" + "b" * (longest - cut - 1))
    if pattern.fullmatch("a.b"):
        candidates.append(".".join(["a" * 63] * 4)[:longest])
    accepted = [value for value in candidates if pattern.fullmatch(value)]
    assert accepted and all(len(value) == longest for value in accepted), path
    return accepted


def _release_names() -> list[str]:
    """Release names around the length where the metrics Service used to pass 63 characters."""
    names = ["r", "taskstore-operator", "a" * 36, "a" * 37, "a" * RELEASE_NAME_MAX]
    names.append("a" * 36 + "-" + "b" * (RELEASE_NAME_MAX - 37))
    names.append("team-taskstore-operator-" + "x" * (RELEASE_NAME_MAX - 24))
    return names


def _cases() -> Iterator[tuple[str, tuple[str, ...]]]:
    common = ("--set", "metrics.serviceMonitor.enabled=true")
    for release in _release_names():
        yield release, common
        yield release, (*common, "--set", "replicas=2", "--set", "watchNamespaces[0]=team-a")
    for override, name in itertools.product(
        _boundary_strings("fullnameOverride"), _boundary_strings("nameOverride")
    ):
        yield (
            "rel",
            (*common, "--set", f"fullnameOverride={override}", "--set", f"nameOverride={name}"),
        )
    for name in _boundary_strings("nameOverride"):
        for release in ("r", "a" * RELEASE_NAME_MAX):
            yield release, (*common, "--set", f"nameOverride={name}", "--set", "replicas=3")
    for account in _boundary_strings("serviceAccount.name"):
        yield "rel", ("--set", f"serviceAccount.name={account}")
    for peering in _boundary_strings("peering.name"):
        yield "rel", ("--set", "replicas=2", "--set", f"peering.name={peering}")
        yield (
            "rel",
            (
                "--set",
                "replicas=2",
                "--set",
                f"peering.name={peering}",
                "--set",
                "watchNamespaces[0]=team-a",
            ),
        )


CASES: Final = list(_cases())


def _label_maps(obj: Manifest) -> Iterator[dict[str, str]]:
    yield obj["metadata"].get("labels") or {}
    spec = obj.get("spec") or {}
    if isinstance(spec.get("selector"), dict):
        yield spec["selector"].get("matchLabels", spec["selector"])
    template = spec.get("template") or {}
    yield (template.get("metadata") or {}).get("labels") or {}


def _name_problems(objects: Sequence[Manifest]) -> list[str]:
    problems = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in LABEL_NAMED_KINDS:
            fits = len(name) <= 63 and DNS1035_LABEL.fullmatch(name)
        else:
            fits = len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name)
        if not fits:
            problems.append(f"{kind} {name!r} ({len(name)} characters)")
        for labels in _label_maps(obj):
            for key, value in labels.items():
                if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
                    problems.append(f"{kind} {name}: label {key}={value!r}")
    return problems


NAME_VALUES: Final = (
    "nameOverride",
    "fullnameOverride",
    "serviceAccount.name",
    "peering.name",
    "priorityClassName",
    "imagePullSecrets.[].name",
)


@pytest.mark.parametrize("path", NAME_VALUES)
def test_every_name_value_has_a_length_and_a_pattern(path: str) -> None:
    node = _schema_node(path)
    assert node["maxLength"] in (63, 253)
    assert node["pattern"].startswith("^") and node["pattern"].endswith("$")


def test_the_boundary_cases_reach_the_limits() -> None:
    """The cases include the ones of the issue: a 63-character fullnameOverride, a 37+ release."""
    assert len(CASES) > 20
    releases = {release for release, _ in CASES}
    assert max(len(release) for release in releases) == RELEASE_NAME_MAX
    assert any(len(release) == 37 for release in releases)
    overrides = [arg for _, args in CASES for arg in args if arg.startswith("fullnameOverride=")]
    assert max(len(arg.split("=", 1)[1]) for arg in overrides) == 63


@pytest.mark.parametrize(("release", "arguments"), CASES, ids=range(len(CASES)))
def test_every_rendered_name_fits_its_kubernetes_rule(
    helm: Helm, release: str, arguments: tuple[str, ...]
) -> None:
    result = helm.run("template", release, str(CHART_DIR), "--namespace", "ops", *arguments)
    assert result.returncode == 0, result.stderr
    objects = _load_all(result.stdout)
    assert objects
    assert _name_problems(objects) == []


def _load_all(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_the_metrics_service_keeps_its_suffix_when_the_name_is_cut(helm: Helm) -> None:
    override = "a" * 54 + "-" + "b" * 8
    objects = helm.template("--set", f"fullnameOverride={override}")
    assert only(objects, "Deployment")["metadata"]["name"] == override
    # Cut to 55 characters, the '-' it ends with trimmed, then the suffix.
    assert only(objects, "Service")["metadata"]["name"] == "a" * 54 + "-metrics"


def test_a_long_release_name_gives_a_63_character_metrics_service(helm: Helm) -> None:
    release = "a" * 37
    result = helm.run("template", release, str(CHART_DIR))
    assert result.returncode == 0, result.stderr
    service = only(_load_all(result.stdout), "Service")
    name = service["metadata"]["name"]
    assert name == f"{release}-taskstore-operato-metrics"
    assert len(name) == 63


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--set", "nameOverride=TaskStore"), "at '/nameOverride'"),
        (("--set", "nameOverride=tasks_store"), "at '/nameOverride'"),
        (("--set", f"nameOverride={'a' * 64}"), "at '/nameOverride': maxLength"),
        (("--set", "fullnameOverride=TaskStore"), "at '/fullnameOverride'"),
        (("--set", "fullnameOverride=1tasks"), "at '/fullnameOverride'"),
        (("--set", f"fullnameOverride={'a' * 64}"), "at '/fullnameOverride': maxLength"),
        (("--set", f"serviceAccount.name={'a' * 254}"), "at '/serviceAccount/name': maxLength"),
        (("--set", "serviceAccount.name=a..b"), "at '/serviceAccount/name'"),
        (("--set", "peering.name=Peers"), "at '/peering/name'"),
        (("--set", "priorityClassName=High Priority"), "at '/priorityClassName'"),
    ],
)
def test_schema_refuses_names_that_render_broken_objects(
    helm: Helm, arguments: tuple[str, ...], message: str
) -> None:
    result = helm.run("template", "rel", str(CHART_DIR), *arguments)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr


def test_metrics_port_equal_to_the_health_port_is_refused(helm: Helm) -> None:
    result = helm.run("template", "rel", str(CHART_DIR), "--set", "metrics.port=8081")
    assert result.returncode != 0
    assert "metrics.port and health.port are both 8081" in result.stderr, result.stderr
    moved = helm.run(
        "template", "rel", str(CHART_DIR), "--set", "metrics.port=9000", "--set", "health.port=9000"
    )
    assert moved.returncode != 0
    assert "metrics.port and health.port are both 9000" in moved.stderr, moved.stderr


@pytest.mark.parametrize("release", ["1rel", "my.rel"])
def test_a_release_name_that_cannot_name_a_service_says_to_set_fullname_override(
    helm: Helm, release: str
) -> None:
    # Helm accepts these release names; a Service name cannot start with a digit or hold a dot.
    result = helm.run("template", release, str(CHART_DIR))
    assert result.returncode != 0
    assert "is not a DNS-1035 label" in result.stderr, result.stderr
    assert "set fullnameOverride" in result.stderr
    fixed = helm.run("template", release, str(CHART_DIR), "--set", "fullnameOverride=tso")
    assert fixed.returncode == 0, fixed.stderr
