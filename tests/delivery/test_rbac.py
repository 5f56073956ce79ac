"""The RBAC the chart grants, listed rule by rule: no wildcard, no verb outside the allowed set.

ALLOWED is the table of docs/install.md. A new rule or verb fails here until it is added to
both, with the reason the operator needs it.
"""

from collections.abc import Iterator, Sequence
from typing import Final

import pytest

from .conftest import SCENARIOS, Helm, Manifest, of_kind

# (apiGroup, resource) -> the verbs the operator may hold on it.
ALLOWED: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("tealagents.io", "taskstores"): frozenset({"get", "list", "watch", "patch"}),
    ("tealagents.io", "taskstores/status"): frozenset({"patch"}),
    ("apps", "deployments"): frozenset({"get", "list", "watch", "patch"}),
    ("", "configmaps"): frozenset({"get", "list", "watch", "create", "patch", "delete"}),
    ("", "services"): frozenset({"get", "list", "watch", "create", "patch", "delete"}),
    ("apps", "statefulsets"): frozenset({"get", "list", "watch", "create", "patch", "delete"}),
    ("networking.k8s.io", "networkpolicies"): frozenset(
        {"get", "list", "watch", "create", "patch", "delete"}
    ),
    ("", "secrets"): frozenset({"get", "create", "delete"}),
    ("", "events"): frozenset({"create"}),
    ("", "namespaces"): frozenset({"get", "list", "watch"}),
    ("apiextensions.k8s.io", "customresourcedefinitions"): frozenset({"list", "watch"}),
    ("kopf.dev", "clusterkopfpeerings"): frozenset({"list", "watch", "create", "patch"}),
    ("kopf.dev", "kopfpeerings"): frozenset({"list", "watch", "create", "patch"}),
}
# Verbs no rule of this chart may ever hold.
FORBIDDEN_VERBS: Final = frozenset(
    {"*", "update", "deletecollection", "escalate", "bind", "impersonate", "approve", "sign"}
)
# Resources that are only ever granted for named objects (create cannot be limited by name).
NAMED_ONLY: Final = {("kopf.dev", "clusterkopfpeerings"), ("kopf.dev", "kopfpeerings")}

RENDERINGS: Final = {
    "default": (),
    "namespaced": ("--values", str(SCENARIOS["namespaced"])),
    "ha": ("--values", str(SCENARIOS["ha"])),
    "ha-namespaced": ("--values", str(SCENARIOS["namespaced"]), "--set", "replicas=2"),
}

Grant = tuple[
    str, str, str, str, str, tuple[str, ...]
]  # kind, namespace, group, resource, verb, names


def granted(objects: Sequence[Manifest]) -> Iterator[Grant]:
    """Every (role, group, resource, verb, names) the rendered Roles and ClusterRoles grant."""
    for role in of_kind(objects, "ClusterRole") + of_kind(objects, "Role"):
        namespace = role["metadata"].get("namespace", "(cluster)")
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, rule
            names = tuple(rule.get("resourceNames", ()))
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        yield role["kind"], namespace, group, resource, verb, names


@pytest.mark.parametrize("scenario", RENDERINGS)
def test_granted_rules_are_minimal(helm: Helm, scenario: str) -> None:
    grants = list(granted(helm.template(*RENDERINGS[scenario])))
    assert grants
    print(f"\n{scenario}: {len(grants)} grants")  # the table, with pytest -s
    for kind, namespace, group, resource, verb, names in grants:
        print(f"  {kind:11} {namespace:10} {group or 'core':18} {resource:22} {verb:7} {names}")
        for field in (group, resource, verb, *names):
            assert "*" not in field, f"wildcard in {kind} {namespace}: {group}/{resource} {verb}"
        assert verb not in FORBIDDEN_VERBS
        assert verb in ALLOWED.get((group, resource), frozenset()), (
            f"{verb} on {group or 'core'}/{resource} is outside the allowed set"
        )
        if (group, resource) in NAMED_ONLY and verb not in {"list", "watch", "create"}:
            assert names, f"{verb} on {resource} must name its objects"


@pytest.mark.parametrize("scenario", RENDERINGS)
def test_every_allowed_verb_is_granted_where_it_is_needed(helm: Helm, scenario: str) -> None:
    """Minimal, not insufficient: each served namespace (or the cluster) gets the whole set."""
    objects = helm.template(*RENDERINGS[scenario])
    namespaced = "namespaced" in scenario
    scopes = ["team-a", "team-b"] if namespaced else ["(cluster)"]
    by_scope: dict[str, set[tuple[str, str, str]]] = {scope: set() for scope in scopes}
    cluster_only: set[tuple[str, str, str]] = set()
    for _, namespace, group, resource, verb, _ in granted(objects):
        if namespace in by_scope:
            by_scope[namespace].add((group, resource, verb))
        else:
            cluster_only.add((group, resource, verb))
    peering = "kopfpeerings" if namespaced else "clusterkopfpeerings"
    cluster_scoped = {"namespaces", "customresourcedefinitions"}
    expected = {
        (group, resource, verb)
        for (group, resource), verbs in ALLOWED.items()
        for verb in verbs
        if resource not in {*cluster_scoped, "kopfpeerings", "clusterkopfpeerings"}
        or resource == peering
    }
    # Peering is on in every scenario; the start-up check lists the other scope's peerings.
    other_peerings = {("kopf.dev", "clusterkopfpeerings" if namespaced else "kopfpeerings", "list")}
    crds = {
        ("apiextensions.k8s.io", "customresourcedefinitions", verb) for verb in ("list", "watch")
    }
    if namespaced:
        for scope, grants in by_scope.items():
            assert grants == expected, scope
        namespaces = {("", "namespaces", verb) for verb in ("get", "list", "watch")}
        assert cluster_only == crds | namespaces | other_peerings
    else:
        assert by_scope["(cluster)"] == expected | crds | other_peerings
        assert not of_kind(objects, "Role")


def test_secrets_are_never_listed_watched_updated_or_patched(helm: Helm) -> None:
    for arguments in RENDERINGS.values():
        verbs = {
            verb
            for _, _, group, resource, verb, _ in granted(helm.template(*arguments))
            if (group, resource) == ("", "secrets")
        }
        assert verbs == {"get", "create", "delete"}


def test_no_rbac_when_disabled(helm: Helm) -> None:
    objects = helm.template("--set", "rbac.create=false", "--set", "replicas=2")
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert not of_kind(objects, kind)
