"""The operator's Prometheus metrics, served on their own port (``--metrics-port``)."""

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

# "kind" is the kind of the object whose watch event asked for the reconcile.
RECONCILES: Final = Counter(
    "taskstore_operator_reconciles_total",
    "TaskStore reconciles, by the kind of object whose event started them.",
    ["kind"],
)
RECONCILE_ERRORS: Final = Counter(
    "taskstore_operator_reconcile_errors_total",
    "TaskStore reconciles that failed and will be retried, by the kind that started them.",
    ["kind"],
)
RECONCILE_DURATION: Final = Histogram(
    "taskstore_operator_reconcile_duration_seconds",
    "Time to reconcile one TaskStore: reads, plan and writes.",
)
WRITES: Final = Counter(
    "taskstore_operator_writes_total",
    "Write requests the operator made, by what they wrote.",
    ["what"],
)
INJECTED_AGENTS: Final = Gauge(
    "taskstore_operator_injected_agents",
    "Deployments carrying a TaskStore's environment.",
    ["namespace", "taskstore"],
)
QUEUE_DEPTH: Final = Gauge(
    "taskstore_operator_queue_depth",
    "TaskStores waiting for or in a reconcile (0: idle).",
)
