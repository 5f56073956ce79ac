"""A thin, typed layer over the Kubernetes REST API: get, list, apply, create, delete, events.

Objects are plain JSON dicts, addressed by apiVersion and kind. Every write carries the
operator's field manager; applies are server-side applies
(``application/apply-patch+yaml``), forced only when the caller owns the whole object.
Errors raise :class:`KubeError`, which carries the status and the API's reason but never
a response body: a body may echo object content, Secret data included.
"""

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from kubernetes import config as kube_config
from kubernetes.client import ApiClient

from taskstore_operator.api.contract import FIELD_MANAGER
from taskstore_operator.api.kinds import BY_KIND
from taskstore_operator.plan.observed import Event, ObjectRef

Manifest = dict[str, Any]

log = logging.getLogger(__name__)

APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"
# The component that Events name as their source.
EVENT_SOURCE: Final = "taskstore-operator"
REQUEST_TIMEOUT: Final = 30.0


class KubeError(Exception):
    """A failed API request: method, object, status code and the API's reason, nothing more."""

    def __init__(self, method: str, what: str, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{method} {what}: {status} {reason}")


def resource_path(
    api_version: str, kind: str, namespace: str, name: str | None = None, subresource: str = ""
) -> str:
    """The REST path of a namespaced collection, object or subresource."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{quote(namespace, safe='')}/{BY_KIND[kind].plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    return f"{path}/{subresource}" if subresource else path


def connect() -> "Kube":
    """A client as the operator runs: in-cluster credentials, else the current kubeconfig."""
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    return Kube(ApiClient())


class Kube:
    """The API calls the operator makes, synchronous (callers run them in a thread)."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object, or None when it does not exist."""
        try:
            return self._request("GET", resource_path(api_version, kind, namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def namespace_exists(self, name: str) -> bool:
        """Whether the namespace exists."""
        try:
            self._request("GET", f"/api/v1/namespaces/{quote(name, safe='')}")
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True

    def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str = ""
    ) -> list[Manifest]:
        """The objects of a kind in a namespace, optionally selected by labels."""
        query = [("labelSelector", label_selector)] if label_selector else []
        found = self._request("GET", resource_path(api_version, kind, namespace), query=query)
        items: list[Manifest] = found.get("items") or []
        # List items lack apiVersion and kind; the callers' helpers expect them.
        return [{"apiVersion": api_version, "kind": kind, **item} for item in items]

    def apply(self, manifest: Mapping[str, Any], *, force: bool) -> Manifest:
        """Server-side apply under the operator's field manager."""
        metadata = manifest["metadata"]
        path = resource_path(
            manifest["apiVersion"], manifest["kind"], metadata["namespace"], metadata["name"]
        )
        return self._apply(path, manifest, force=force)

    def apply_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> Manifest:
        """Server-side apply of a whole status (forced: the operator is its only writer)."""
        body = {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "metadata": {"name": ref.name, "namespace": ref.namespace},
            "status": status,
        }
        path = resource_path(ref.api_version, ref.kind, ref.namespace, ref.name, "status")
        return self._apply(path, body, force=True)

    def set_finalizer(self, ref: ObjectRef, finalizer: str, *, present: bool) -> Manifest:
        """Add or remove one finalizer, owned by the operator's field manager (a set item)."""
        metadata: Manifest = {"name": ref.name, "namespace": ref.namespace}
        if present:
            metadata["finalizers"] = [finalizer]
        body = {"apiVersion": ref.api_version, "kind": ref.kind, "metadata": metadata}
        path = resource_path(ref.api_version, ref.kind, ref.namespace, ref.name)
        return self._apply(path, body, force=False)

    def create(self, manifest: Mapping[str, Any]) -> Manifest:
        """Create an object; KubeError 409 when it exists already."""
        path = resource_path(
            manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"]
        )
        return self._request("POST", path, body=manifest, query=[("fieldManager", FIELD_MANAGER)])

    def delete(self, ref: ObjectRef) -> None:
        """Delete an object (background propagation); one that is gone already is fine."""
        path = resource_path(ref.api_version, ref.kind, ref.namespace, ref.name)
        options: Manifest = {"propagationPolicy": "Background"}
        if ref.uid:
            options["preconditions"] = {"uid": ref.uid}
        try:
            self._request("DELETE", path, body=options)
        except KubeError as error:
            if error.status != 404:
                raise

    def post_event(self, event: Event) -> None:
        """Record a core/v1 Event about ``event.regarding`` (what ``kubectl describe`` shows)."""
        regarding = event.regarding
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{regarding.name}.{uuid.uuid4().hex[:16]}",
                "namespace": regarding.namespace,
            },
            "involvedObject": {
                "apiVersion": regarding.api_version,
                "kind": regarding.kind,
                "namespace": regarding.namespace,
                "name": regarding.name,
                "uid": regarding.uid,
            },
            "type": event.type.value,
            "reason": event.reason,
            "message": event.message,
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._request("POST", resource_path("v1", "Event", regarding.namespace), body=body)

    def _apply(self, path: str, body: Mapping[str, Any], *, force: bool) -> Manifest:
        query: list[tuple[str, str]] = [("fieldManager", FIELD_MANAGER)]
        if force:
            query.append(("force", "true"))
        return self._request("PATCH", path, body=body, query=query, content_type=APPLY_CONTENT_TYPE)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> Manifest:
        serialized = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT)
        data: bytes = response.read()  # type: ignore[no-untyped-call]
        if response.status >= 400:
            raise KubeError(method, path, response.status, _status_reason(data))
        if method != "GET":
            log.debug("%s %s: %s", method, path, response.status)
        return json.loads(data) if data else {}


def _status_reason(data: bytes) -> str:
    """The machine-readable reason of an API Status (``Conflict``, ``Invalid``), never its text."""
    try:
        status = json.loads(data)
    except ValueError:
        return "unreadable response"
    reason = status.get("reason") if isinstance(status, dict) else None
    causes = (status.get("details") or {}).get("causes") or [] if isinstance(status, dict) else []
    fields = sorted({str(cause["field"]) for cause in causes if cause.get("field")})
    text = str(reason or "Unknown")
    return f"{text} ({', '.join(fields)})" if fields else text
