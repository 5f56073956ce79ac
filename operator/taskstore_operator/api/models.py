"""Typed TaskStore spec and status: the one source of the CRD schema and of what the operator reads.

Every field carries the description ``kubectl explain`` shows. Single-field constraints
(enums, bounds, patterns, required) live on the fields, so pydantic and the API server
enforce the same ones; cross-field rules are :class:`CelRule` entries on the models.
"""

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from taskstore_operator.api.contract import (
    ENV_PERSISTENCE_CLASS,
    ENV_PERSISTENCE_MODULE,
    PASSWORD_KEY,
    REDIS_PORT,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.quantity import QUANTITY_PATTERN
from taskstore_operator.api.rules import CelRule
from teal_taskstore.persistence.redis_settings import DEFAULT_SENTINEL_MASTER, MAX_INT32

# Names of Secrets and ConfigMaps (RFC 1123 subdomain).
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Names of Services (RFC 1035 label): the managed Redis Service is named after the store.
DNS_LABEL_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 (a name, not a password)
ENV_NAME_PATTERN: Final = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
PYTHON_IDENTIFIER_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
# TA_PERSISTENCE_MODULE: a dotted module path, or a path to a ``.py`` file.
MODULE_PATTERN: Final = (
    r"^([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*|[-./A-Za-z0-9_]*[-A-Za-z0-9_]\.py)$"
)
KEY_PREFIX_PATTERN: Final = r"^[A-Za-z0-9:_.-]*$"
HOST_PATTERN: Final = r"^\S+$"
# host:port of a sentinel, [v6-address]:port too; port 1..65535.
_PORT: Final = (
    r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
HOST_PORT_PATTERN: Final = rf"^(\[[0-9a-fA-F:.]+\]|[^\s:\[\],]+):{_PORT}$"
MAX_SENTINELS: Final = 16
# A container image reference, as the container runtimes parse it (the distribution
# project's reference grammar: [host[:port]/]path[:tag][@digest]), written in the syntax
# that Go's RE2, Rust's regex and Python's re share.
_IMAGE_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_HOST: Final = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
IMAGE_PATTERN: Final = (
    rf"^(?:{_IMAGE_HOST}/)?{_IMAGE_PATH_COMPONENT}(?:/{_IMAGE_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
# The resources a Redis container can ask for; anything else (a typo, an extended resource)
# would be refused by the API server only when the StatefulSet is applied.
REDIS_RESOURCE_NAMES: Final = ("cpu", "memory", "ephemeral-storage")
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_TYPE_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# What each pattern means, for error messages people can act on.
PATTERN_MEANINGS: Final = {
    DNS_SUBDOMAIN_PATTERN: "a DNS subdomain: lower-case letters, digits, '-' and '.'",
    SECRET_KEY_PATTERN: "a Secret key: letters, digits, '-', '_' and '.'",
    ENV_NAME_PATTERN: "an environment variable name: letters, digits, '-', '_' and '.', "
    "not starting with a digit",
    PYTHON_IDENTIFIER_PATTERN: "a Python identifier",
    MODULE_PATTERN: "a dotted module path (my_company.stores) or the path of a .py file",
    KEY_PREFIX_PATTERN: "letters, digits, ':', '_', '.' and '-'",
    QUANTITY_PATTERN: "a Kubernetes quantity, such as 500m or 1Gi",
    HOST_PATTERN: "a host name or address without spaces",
    HOST_PORT_PATTERN: "host:port (or [IPv6]:port), port 1..65535",
    IMAGE_PATTERN: "an image reference such as redis:7.2 or "
    "registry.example:5000/redis@sha256:..., without spaces",
}

# A label value is at most 63 characters, and the store's name is the value of TASKSTORE_LABEL.
MAX_NAME_LENGTH: Final = 63
# The StatefulSet "<name>-redis" gets a controller-revision-hash label "<sts>-<10 chars>" that
# must fit in 63 characters, so the StatefulSet name is at most 52 and the store's 46.
MAX_MANAGED_NAME_LENGTH: Final = 46
MAX_CUSTOM_ENV: Final = 64
RESERVED_CUSTOM_ENV: Final = (ENV_PERSISTENCE_MODULE, ENV_PERSISTENCE_CLASS)

DEFAULT_REDIS_IMAGE: Final = "redis:7.2"
DEFAULT_TTL_SECONDS: Final = 3600


def _quantity_to_str(value: Any) -> Any:
    """Quantities arrive as YAML integers (``cpu: 1``) or strings; keep them as strings."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    StringConstraints(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "description": "A Kubernetes quantity, such as 500m or 1Gi.",
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]


class ApiModel(BaseModel):
    """Base of the TaskStore API models: camelCase on the wire, unknown fields refused, immutable.

    Subclasses list their cross-field rules in ``cel_rules``; they become the model's
    ``x-kubernetes-validations`` in the generated schema.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The model's JSON schema with its CEL rules attached."""
        schema = handler(core_schema)
        if cls.cel_rules:
            target = handler.resolve_ref_schema(schema)
            target["x-kubernetes-validations"] = [rule.to_schema() for rule in cls.cel_rules]
        return schema


class Backend(StrEnum):
    """Where agents keep their tasks."""

    MEMORY = "memory"
    REDIS = "redis"
    CUSTOM = "custom"


class RedisMode(StrEnum):
    """How agents reach an external Redis: one server, through Sentinel, or a Cluster."""

    STANDALONE = "standalone"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


class DeletionPolicy(StrEnum):
    """What happens to the managed Redis data volume when the TaskStore is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class PasswordSecretRef(ApiModel):
    """A key of a Secret, in the TaskStore's namespace, that holds the Redis password."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the Secret, in the TaskStore's own namespace.",
    )
    key: str = Field(
        default=PASSWORD_KEY,
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key in the Secret's data whose value is the password.",
    )


class RedisStorage(ApiModel):
    """A persistent data volume for the managed Redis (append-only file on)."""

    size: Quantity = Field(
        default="1Gi",
        description="Requested size of the data volume, a Kubernetes quantity such as 1Gi.",
    )
    storage_class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="StorageClass of the data volume; the cluster's default class when omitted.",
    )


def _resource_names_rule(field: str) -> CelRule:
    """Only the resource names a Redis container uses, in ``requests`` or ``limits``."""
    names = ", ".join(f"'{name}'" for name in REDIS_RESOURCE_NAMES)
    return CelRule(
        rule=f"!has(self.{field}) || self.{field}.all(name, name in [{names}])",
        message=f"resource names must be one of: {', '.join(REDIS_RESOURCE_NAMES)}",
        field_path=f".{field}",
        holds=lambda model: set(getattr(model, field)) <= set(REDIS_RESOURCE_NAMES),
    )


class ResourceRequirements(ApiModel):
    """CPU and memory for the managed Redis container."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        _resource_names_rule("requests"),
        _resource_names_rule("limits"),
    )

    requests: dict[str, Quantity] = Field(
        default={"cpu": "50m", "memory": "64Mi"},
        max_length=len(REDIS_RESOURCE_NAMES),
        description=(
            "Resources the scheduler reserves for Redis, by resource name (cpu, memory, "
            "ephemeral-storage), as Kubernetes quantities."
        ),
    )
    limits: dict[str, Quantity] = Field(
        default={"memory": "256Mi"},
        max_length=len(REDIS_RESOURCE_NAMES),
        description=(
            "Upper bounds by resource name (cpu, memory, ephemeral-storage), as Kubernetes "
            "quantities. Redis's maxmemory is set to 70% of the memory limit, so a full store "
            "refuses writes instead of being killed."
        ),
    )


class ManagedRedis(ApiModel):
    """A Redis the operator runs in the TaskStore's namespace, reachable only by its agents."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "has(self.storage) == has(oldSelf.storage)"
                " && (!has(self.storage) || self.storage == oldSelf.storage)"
            ),
            message=(
                "storage cannot change once the managed Redis exists (volume claim templates "
                "are immutable); resize the PersistentVolumeClaim directly instead"
            ),
            field_path=".storage",
        ),
    )

    image: str = Field(
        default=DEFAULT_REDIS_IMAGE,
        min_length=1,
        pattern=IMAGE_PATTERN,
        description=(
            "Redis container image reference ([registry/]repository[:tag][@digest], no spaces); "
            "the image must provide redis-server, redis-cli and sh."
        ),
    )
    storage: RedisStorage | None = Field(
        default=None,
        description=(
            "Persistent data volume. When omitted, data lives in an emptyDir and is lost when "
            "the Redis pod restarts. Cannot be changed after creation."
        ),
    )
    resources: ResourceRequirements = Field(
        default=ResourceRequirements(),
        description="Compute resources of the Redis container; small defaults fit a task store.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description=(
            "Retain keeps the data volume when the TaskStore is deleted; Delete removes it "
            "with the TaskStore."
        ),
    )


_SENTINEL_ONLY: Final = ("sentinels", "masterName", "sentinelUsername", "sentinelPasswordSecretRef")


def _mode_is(mode: RedisMode) -> str:
    """CEL: the store's mode is ``mode`` (standalone when left out)."""
    if mode == RedisMode.STANDALONE:
        return "(!has(self.mode) || self.mode == 'standalone')"
    return f"(has(self.mode) && self.mode == '{mode.value}')"


class ExternalRedis(ApiModel):
    """An existing Redis that the operator does not run; agents connect to it directly.

    ``mode`` picks the form: one server at host:port (standalone), a master found through
    Redis Sentinel (sentinels, masterName), or a Redis Cluster seeded by host:port.
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                f"!{_mode_is(RedisMode.SENTINEL)}"
                " || (has(self.sentinels) && size(self.sentinels) > 0)"
            ),
            message="mode sentinel needs sentinels: the host:port of at least one sentinel",
            field_path=".sentinels",
            reason="FieldValueRequired",
            holds=lambda redis: redis.mode != RedisMode.SENTINEL or bool(redis.sentinels),
        ),
        CelRule(
            rule=f"{_mode_is(RedisMode.SENTINEL)} || has(self.host)",
            message="host is required unless mode is sentinel (then sentinels name the master)",
            field_path=".host",
            reason="FieldValueRequired",
            holds=lambda redis: redis.mode == RedisMode.SENTINEL or redis.host is not None,
        ),
        CelRule(
            rule=f"!{_mode_is(RedisMode.SENTINEL)} || !has(self.host)",
            message="host is not used with mode sentinel: the sentinels name the master",
            field_path=".host",
            reason="FieldValueForbidden",
            holds=lambda redis: redis.mode != RedisMode.SENTINEL or redis.host is None,
        ),
        CelRule(
            rule=f"!{_mode_is(RedisMode.CLUSTER)} || !has(self.db) || self.db == 0",
            message="db must be 0 with mode cluster: Redis Cluster has only database 0",
            field_path=".db",
            holds=lambda redis: redis.mode != RedisMode.CLUSTER or redis.db == 0,
        ),
        CelRule(
            rule=f"{_mode_is(RedisMode.SENTINEL)} || "
            + " && ".join(f"!has(self.{name})" for name in _SENTINEL_ONLY),
            message=f"{', '.join(_SENTINEL_ONLY)} are used only with mode sentinel",
            reason="FieldValueForbidden",
            holds=lambda redis: (
                redis.mode == RedisMode.SENTINEL
                or (
                    not redis.sentinels
                    and redis.master_name is None
                    and redis.sentinel_username is None
                    and redis.sentinel_password_secret_ref is None
                )
            ),
        ),
    )

    mode: RedisMode = Field(
        default=RedisMode.STANDALONE,
        description=(
            "standalone: one Redis server at host:port. sentinel: the master that the "
            "sentinels (Redis Sentinel) name, followed across failovers; host and port are "
            "not used. cluster: a Redis Cluster, host:port being any node (db must be 0)."
        ),
    )
    host: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=HOST_PATTERN,
        description=(
            "Host name or IP address of the Redis server (standalone) or of a cluster node "
            "(cluster). Required unless mode is sentinel, and not allowed then."
        ),
    )
    port: int = Field(
        default=REDIS_PORT,
        ge=1,
        le=65535,
        description="TCP port of the Redis server or cluster node; not used with mode sentinel.",
    )
    db: int = Field(
        default=0,
        ge=0,
        le=MAX_INT32,
        description="Redis logical database number; 0 with mode cluster.",
    )
    tls: bool = Field(
        default=False,
        description="Connect with TLS (to the data nodes and, with mode sentinel, the sentinels).",
    )
    username: str | None = Field(
        default=None,
        min_length=1,
        description="Redis 6 ACL user name of the data nodes; the default user when omitted.",
    )
    password_secret_ref: PasswordSecretRef | None = Field(
        default=None,
        description=(
            "Secret key holding the data nodes' Redis password, in the TaskStore's namespace; "
            "agents read it through a secretKeyRef and a rotation rolls them. No password "
            "when omitted. Never sent to the sentinels."
        ),
    )
    sentinels: list[Annotated[str, StringConstraints(pattern=HOST_PORT_PATTERN)]] | None = Field(
        default=None,
        max_length=MAX_SENTINELS,
        description=(
            "Mode sentinel: host:port of each sentinel (at least one; all of them, so that "
            "agents find the master while some are down)."
        ),
    )
    master_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=HOST_PATTERN,
        description=(
            f"Mode sentinel: the name the sentinels monitor the master under; "
            f"{DEFAULT_SENTINEL_MASTER} when omitted."
        ),
    )
    sentinel_username: str | None = Field(
        default=None,
        min_length=1,
        description="Mode sentinel: the sentinels' ACL user name, if they use one.",
    )
    sentinel_password_secret_ref: PasswordSecretRef | None = Field(
        default=None,
        description=(
            "Mode sentinel: Secret key holding the sentinels' own password (their requirepass), "
            "in the TaskStore's namespace; read by agents through a secretKeyRef, and a "
            "rotation rolls them. Distinct from passwordSecretRef, the data nodes' password."
        ),
    )


class RedisSpec(ApiModel):
    """Settings of the redis backend: exactly one of managed or external."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.managed) != has(self.external)",
            message="exactly one of managed or external must be set",
            holds=lambda redis: (redis.managed is None) != (redis.external is None),
        ),
    )

    key_prefix: str = Field(
        default="",
        max_length=128,
        pattern=KEY_PREFIX_PATTERN,
        description=(
            "Prefix for every key the agents write, so several TaskStores can share one Redis "
            "(letters, digits and : _ . -). Empty means no prefix."
        ),
    )
    managed: ManagedRedis | None = Field(
        default=None, description="Run a Redis for this TaskStore. Exclusive with external."
    )
    external: ExternalRedis | None = Field(
        default=None, description="Use an existing Redis. Exclusive with managed."
    )


class SecretKeySelector(ApiModel):
    """A key of a Secret in the agent's namespace."""

    name: str = Field(min_length=1, description="Name of the Secret.")
    key: str = Field(min_length=1, description="Key in the Secret's data.")
    optional: bool | None = Field(
        default=None, description="Start the agent even if the key is missing."
    )


class ConfigMapKeySelector(ApiModel):
    """A key of a ConfigMap in the agent's namespace."""

    name: str = Field(min_length=1, description="Name of the ConfigMap.")
    key: str = Field(min_length=1, description="Key in the ConfigMap's data.")
    optional: bool | None = Field(
        default=None, description="Start the agent even if the key is missing."
    )


class ObjectFieldSelector(ApiModel):
    """A field of the agent's own pod."""

    api_version: str | None = Field(
        default=None, description="API version of the object fieldPath refers to; v1 when omitted."
    )
    field_path: str = Field(min_length=1, description="Path of the field, such as metadata.name.")


class ResourceFieldSelector(ApiModel):
    """A resource request or limit of one of the agent's containers."""

    container_name: str | None = Field(
        default=None,
        description="Container whose resource is read; the agent container when omitted.",
    )
    resource: str = Field(min_length=1, description="Resource to read, such as limits.memory.")
    divisor: Quantity | None = Field(
        default=None, description="Unit of the exposed value; 1 by default."
    )


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from: exactly one source."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0)"
                " + (has(self.fieldRef) ? 1 : 0) + (has(self.resourceFieldRef) ? 1 : 0) == 1"
            ),
            message=(
                "exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef "
                "must be set"
            ),
            holds=lambda source: (
                sum(
                    ref is not None
                    for ref in (
                        source.secret_key_ref,
                        source.config_map_key_ref,
                        source.field_ref,
                        source.resource_field_ref,
                    )
                )
                == 1
            ),
        ),
    )

    secret_key_ref: SecretKeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: ConfigMapKeySelector | None = Field(
        default=None, description="A key of a ConfigMap."
    )
    field_ref: ObjectFieldSelector | None = Field(default=None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource request or limit of a container."
    )


class EnvVar(ApiModel):
    """An environment variable passed to the agents, as in a container's env."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!(has(self.value) && has(self.valueFrom))",
            message="value and valueFrom are mutually exclusive",
            holds=lambda env: env.value is None or env.value_from is None,
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=ENV_NAME_PATTERN,
        description="Name of the variable.",
    )
    value: str | None = Field(default=None, description="Literal value. Exclusive with valueFrom.")
    value_from: EnvVarSource | None = Field(
        default=None,
        description="Take the value from a Secret, ConfigMap or the pod. Exclusive with value.",
    )


_RESERVED_ENV_CEL: Final = ", ".join(f"'{name}'" for name in RESERVED_CUSTOM_ENV)


class CustomBackend(ApiModel):
    """A user-supplied TaskPersistenceManager class, loaded by the agents themselves."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"!has(self.env) || self.env.all(e, !(e.name in [{_RESERVED_ENV_CEL}]))",
            message=(
                f"env must not set {' or '.join(RESERVED_CUSTOM_ENV)}: "
                "module and className set them"
            ),
            field_path=".env",
            holds=lambda custom: all(env.name not in RESERVED_CUSTOM_ENV for env in custom.env),
        ),
    )

    module: str = Field(
        min_length=1,
        max_length=1024,
        pattern=MODULE_PATTERN,
        description=(
            "Module holding the class, as in TA_PERSISTENCE_MODULE: the path of a .py file in "
            "the agent image (/app/my_store.py), which the Teal Agents framework loads as the "
            "module named by the file name (so not redis.py or any module agents import), or a "
            "dotted module path (my_company.stores), which only agents using teal_taskstore's "
            "own PersistenceFactory can load (the status says so)."
        ),
    )

    @property
    def is_file_path(self) -> bool:
        """Whether ``module`` is a ``.py`` file path, the only form the framework loads."""
        return self.module.endswith(".py")

    @property
    def file_stem(self) -> str | None:
        """The name the framework registers a file ``module`` under: its file name up to the
        first dot (``None`` for a dotted module path)."""
        if not self.is_file_path:
            return None
        return self.module.rsplit("/", 1)[-1].split(".", 1)[0]

    class_name: str = Field(
        min_length=1,
        max_length=256,
        pattern=PYTHON_IDENTIFIER_PATTERN,
        description="Name of the TaskPersistenceManager subclass in module.",
    )
    env: list[EnvVar] = Field(
        default=[],
        max_length=MAX_CUSTOM_ENV,
        description=(
            "Extra environment variables for the agents (value or valueFrom), for the custom "
            "store's own settings."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


def _settings_only_with_backend(backend: Backend, field: str) -> tuple[CelRule, CelRule]:
    """Rules making spec.<field> required with ``backend`` and forbidden with any other.

    The CEL tests has(self.backend) because the API server also checks these rules
    against the spec's default ({}), before nested defaults fill in backend.
    """
    selected = f"(has(self.backend) && self.backend == '{backend}')"
    return (
        CelRule(
            rule=f"!has(self.{field}) || {selected}",
            message=f"{field} is allowed only when backend is {backend}",
            field_path=f".{field}",
            reason="FieldValueForbidden",
            holds=lambda spec: spec.backend == backend or getattr(spec, field) is None,
        ),
        CelRule(
            rule=f"!{selected} || has(self.{field})",
            message=f"{field} is required when backend is {backend}",
            field_path=f".{field}",
            reason="FieldValueRequired",
            holds=lambda spec: spec.backend != backend or getattr(spec, field) is not None,
        ),
    )


class TaskStoreSpec(ApiModel):
    """The desired task store: a backend and its settings."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        *_settings_only_with_backend(Backend.REDIS, "redis"),
        *_settings_only_with_backend(Backend.CUSTOM, "custom"),
    )

    backend: Backend = Field(
        default=Backend.MEMORY,
        description=(
            "memory keeps tasks in each agent process (lost on restart, not shared between "
            "replicas); redis uses a managed or an external Redis; custom loads your own class."
        ),
    )
    ttl_seconds: int = Field(
        default=DEFAULT_TTL_SECONDS,
        ge=0,
        le=MAX_INT32,
        description=(
            "Seconds a task lives in Redis after its last write (TA_REDIS_TTL); 0 means forever. "
            "Used by the redis backend."
        ),
    )
    redis: RedisSpec | None = Field(
        default=None,
        description="Redis settings; required with backend redis and allowed only then.",
    )
    custom: CustomBackend | None = Field(
        default=None,
        description="Custom class; required with backend custom and allowed only then.",
    )


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the TaskStore's state, as in the Kubernetes API conventions."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Ready, RedisAvailable or AgentsConfigured.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="CamelCase reason for the last transition, for machines.",
    )
    message: str = Field(default="", max_length=32768, description="Details for humans.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the spec this condition describes."
    )
    last_transition_time: datetime = Field(description="When status last changed.")


class AgentsStatus(ApiModel):
    """The Deployments that opted in to this TaskStore."""

    injected: int = Field(
        default=0, ge=0, description="Number of Deployments carrying the environment."
    )
    names: list[str] = Field(
        default=[], description="Names of the Deployments carrying the environment."
    )
    conflicts: list[str] = Field(
        default=[],
        description=(
            "Deployments not configured: they set a variable the operator injects by hand, or "
            "their tealagents.io/containers annotation names a container the pod lacks."
        ),
    )


class TaskStoreStatus(ApiModel):
    """What the operator observed; never holds a password or any Secret content."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the spec last reconciled."
    )
    endpoint: str = Field(
        default="",
        description="host:port agents connect to; empty for the memory and custom backends.",
    )
    secret_name: str | None = Field(
        default=None, description="Secret holding the managed Redis password (managed Redis only)."
    )
    agents: AgentsStatus = Field(default=AgentsStatus(), description="Opted-in Deployments.")
    conditions: list[Condition] = Field(
        default=[],
        description="Ready, RedisAvailable (redis backend) and AgentsConfigured.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ObjectMeta(BaseModel):
    """The parts of a TaskStore's metadata the operator uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    namespace: str
    uid: str
    generation: int


class TaskStore(ApiModel):
    """A TaskStore object as read from the API server: metadata and spec.

    Status is left out: a status the operator cannot read is rewritten, never a reason to
    refuse the spec. Its ``cel_rules`` are the CRD's root-level rules, because the API
    server lets CEL read ``metadata.name`` only at the root of the schema.
    """

    model_config = ConfigDict(extra="ignore")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
            message=(
                f"metadata.name must be at most {MAX_NAME_LENGTH} characters: agent pods carry "
                f"it as the value of the {TASKSTORE_LABEL} label"
            ),
            field_path=".metadata.name",
            server_field_path=False,
            holds=lambda store: len(store.metadata.name) <= MAX_NAME_LENGTH,
        ),
        CelRule(
            rule=(
                "!has(self.spec) || !has(self.spec.redis) || !has(self.spec.redis.managed)"
                f" || (size(self.metadata.name) <= {MAX_MANAGED_NAME_LENGTH}"
                f" && self.metadata.name.matches('{DNS_LABEL_PATTERN}'))"
            ),
            message=(
                f"with a managed Redis, metadata.name must be a DNS label (lower-case letters, "
                f"digits and '-', starting with a letter) of at most {MAX_MANAGED_NAME_LENGTH} "
                "characters, because the Redis Service and StatefulSet are named after it"
            ),
            field_path=".metadata.name",
            server_field_path=False,
            holds=lambda store: (
                store.spec.redis is None
                or store.spec.redis.managed is None
                or (
                    len(store.metadata.name) <= MAX_MANAGED_NAME_LENGTH
                    and re.fullmatch(DNS_LABEL_PATTERN, store.metadata.name) is not None
                )
            ),
        ),
    )

    metadata: ObjectMeta
    spec: TaskStoreSpec = Field(default=TaskStoreSpec(), description="The desired task store.")

    @property
    def managed_redis(self) -> ManagedRedis | None:
        """The managed Redis settings; None unless the store's backend is a managed Redis."""
        redis = self.spec.redis
        return redis.managed if self.spec.backend == Backend.REDIS and redis is not None else None

    @property
    def external_redis(self) -> ExternalRedis | None:
        """The external Redis settings; None unless the store's backend is an external Redis."""
        redis = self.spec.redis
        return redis.external if self.spec.backend == Backend.REDIS and redis is not None else None
