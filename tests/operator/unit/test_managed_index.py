"""The index of managed objects: identity, version and owners only; no Secrets."""

from taskstore_operator.plan.observed import ref_of
from taskstore_operator.runtime.managed_index import ManagedObjects

# What the index keeps of an object's metadata.
KEPT = {
    "name": "cache-redis",
    "namespace": "n",
    "uid": "s1",
    "resourceVersion": "5",
    "ownerReferences": [{"uid": "store"}],
}
STATEFULSET = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {
        **KEPT,
        "annotations": {"big": "x" * 1000},
        "managedFields": [{"manager": "taskstore-operator"}],
    },
    "spec": {"replicas": 1},
    "status": {"readyReplicas": 1},
}


def test_an_object_is_kept_by_name_with_its_identity_version_and_owners_only() -> None:
    index = ManagedObjects()
    index.put(STATEFULSET)

    assert index.get(ref_of(STATEFULSET)) == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": KEPT,
    }
    index.drop(ref_of(STATEFULSET))
    assert index.get(ref_of(STATEFULSET)) is None


def test_secrets_are_never_kept() -> None:
    secret = {**STATEFULSET, "apiVersion": "v1", "kind": "Secret", "data": {"password": "eA=="}}
    index = ManagedObjects()
    index.put(secret)
    assert index.get(ref_of(secret)) is None
