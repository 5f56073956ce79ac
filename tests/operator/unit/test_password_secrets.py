"""The password Secrets the stores name: read now and then, a store enqueued on a change."""

from typing import Any

from support.samples import MANAGED, MEMORY, external_with_password, taskstore
from taskstore_operator.runtime.password_secrets import PasswordSecrets, secret_names


def _manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    manifest = taskstore(name, spec)
    manifest["metadata"].update(namespace="ns", uid="u-1", generation=1)
    return manifest


def test_the_secret_a_store_names() -> None:
    assert secret_names(_manifest("tasks", MANAGED)) == ("tasks-redis-auth",)
    assert secret_names(_manifest("tasks", external_with_password("auth"))) == ("auth",)
    assert secret_names(_manifest("tasks", MEMORY)) == ()
    assert secret_names(_manifest("tasks", {"backend": "nonsense"})) == ()


def test_a_store_is_reported_when_its_secret_appears_changes_or_goes() -> None:
    live: dict[tuple[str, str], dict[str, Any]] = {}

    def read(namespace: str, name: str) -> dict[str, Any] | None:
        return live.get((namespace, name))

    secrets = PasswordSecrets()
    secrets.update(("ns", "tasks"), ("auth",))
    assert secrets.changes(read) == [(("ns", "tasks"), None)]  # the first check
    assert secrets.changes(read) == []
    live[("ns", "auth")] = {"metadata": {"uid": "s-1", "resourceVersion": "7"}}
    assert secrets.changes(read) == [(("ns", "tasks"), ("s-1", "7"))]
    assert secrets.changes(read) == []
    live[("ns", "auth")]["metadata"]["resourceVersion"] = "8"
    assert secrets.changes(read) == [(("ns", "tasks"), ("s-1", "8"))]
    del live[("ns", "auth")]
    assert secrets.changes(read) == [(("ns", "tasks"), None)]
    secrets.update(("ns", "tasks"), ())
    assert secrets.changes(read) == []
    assert len(secrets) == 0


def test_a_sentinel_store_is_reported_when_either_of_its_secrets_changes() -> None:
    manifest = _manifest(
        "tasks",
        {
            "backend": "redis",
            "redis": {
                "external": {
                    "mode": "sentinel",
                    "sentinels": ["s1:26379"],
                    "passwordSecretRef": {"name": "auth"},
                    "sentinelPasswordSecretRef": {"name": "sentinel-auth"},
                }
            },
        },
    )
    assert secret_names(manifest) == ("auth", "sentinel-auth")
    live: dict[tuple[str, str], dict[str, Any]] = {
        ("ns", "auth"): {"metadata": {"uid": "a", "resourceVersion": "1"}},
        ("ns", "sentinel-auth"): {"metadata": {"uid": "s", "resourceVersion": "1"}},
    }
    secrets = PasswordSecrets()
    secrets.update(("ns", "tasks"), secret_names(manifest))
    assert len(secrets.changes(lambda namespace, name: live.get((namespace, name)))) == 2
    live[("ns", "sentinel-auth")]["metadata"]["resourceVersion"] = "2"
    assert secrets.changes(lambda namespace, name: live.get((namespace, name))) == [
        (("ns", "tasks"), ("s", "2"))
    ]
