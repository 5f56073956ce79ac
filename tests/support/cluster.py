"""The e2e tests' view of the local cluster, as plain dicts: create, read, wait on objects."""

from collections.abc import Callable
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.samples import Manifest, agent_deployment, taskstore
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.controlplane import READY_STATEFULSET_STATUS
from taskstore_operator.api.contract import CONFIG_HASH_ANNOTATION, GROUP, PLURAL, VERSION

# How long a test waits for the operator to converge on a change.
TIMEOUT = 30.0


class Kube:
    """TaskStores, agent Deployments and the objects around them, through the admin client."""

    def __init__(self, api: client.ApiClient, control_plane: ControlPlane) -> None:
        self.api = api
        self.control_plane = control_plane
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def plain(self, obj: Any) -> Manifest:
        """A client model as the dict the API server sent."""
        result: Manifest = self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return result

    def create(self, path: str, body: Manifest) -> None:
        """POST an object given as a dict."""
        self.control_plane.request_json("POST", path, body)

    def create_namespace(self, name: str) -> None:
        self.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace (in the background)."""
        self.control_plane.request("DELETE", f"/api/v1/namespaces/{name}")

    def create_store(self, namespace: str, name: str, spec: Manifest) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, taskstore(name, spec)
        )

    def patch_store(self, namespace: str, name: str, spec: Manifest) -> None:
        """A JSON merge patch of the spec (None removes a field)."""
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )

    def delete_store(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def store(self, namespace: str, name: str) -> Manifest | None:
        """The TaskStore, or None if there is none."""
        try:
            found = cast(
                Manifest,
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def all_stores(self) -> list[Manifest]:
        """Every TaskStore of the cluster."""
        listed = cast(Manifest, self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))
        return cast(list[Manifest], listed["items"])

    def condition(self, namespace: str, name: str, type_: str = "Ready") -> Manifest:
        store = self.store(namespace, name) or {}
        conditions = (store.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})

    def ready(self, namespace: str, name: str, status: str = "True", reason: str = "") -> bool:
        """Whether the store's Ready condition has ``status`` (and ``reason``, if given)."""
        condition = self.condition(namespace, name)
        return condition.get("status") == status and (
            not reason or condition.get("reason") == reason
        )

    def create_deployment(
        self,
        namespace: str,
        name: str,
        store: str | None = "tasks",
        containers: tuple[str, ...] = ("agent",),
        env: list[Manifest] | None = None,
    ) -> None:
        """An agent Deployment that opts in to ``store`` (None: to nothing)."""
        body = agent_deployment(name, store, containers, env)
        self.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", body)

    def deployment(self, namespace: str, name: str) -> Manifest:
        return self.plain(self.apps.read_namespaced_deployment(name, namespace))

    def env(self, namespace: str, name: str, container: str = "agent") -> dict[str, Any]:
        """A container's variables: name -> value, or the valueFrom of a reference."""
        containers = self.deployment(namespace, name)["spec"]["template"]["spec"]["containers"]
        found = next(c for c in containers if c["name"] == container)
        return {v["name"]: v.get("value", v.get("valueFrom")) for v in found.get("env") or []}

    def template_meta(self, namespace: str, name: str) -> Manifest:
        meta: Manifest = self.deployment(namespace, name)["spec"]["template"]["metadata"]
        return meta

    def config_hash(self, namespace: str, name: str) -> str | None:
        annotations = self.template_meta(namespace, name).get("annotations") or {}
        return annotations.get(CONFIG_HASH_ANNOTATION)

    def exists(self, read: Callable[..., Any], *args: Any) -> bool:
        """Whether ``read(*args)`` finds the object (False on 404)."""
        try:
            read(*args)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def set_redis_ready(self, namespace: str, store: str) -> None:
        """Report the managed Redis' StatefulSet ready, as its controller would."""
        self.apps.patch_namespaced_stateful_set_status(
            f"{store}-redis", namespace, {"status": READY_STATEFULSET_STATUS}
        )

    def events(self, namespace: str) -> list[Manifest]:
        return [self.plain(e) for e in self.core.list_namespaced_event(namespace).items]

    def no_namespace_terminating(self) -> bool:
        return all(
            (ns.status and ns.status.phase) != "Terminating"
            for ns in self.core.list_namespace().items
        )
