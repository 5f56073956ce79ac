"""``python -m taskstore_operator`` / ``taskstore-operator``: run the TaskStore operator.

It watches every namespace unless ``--namespace`` (repeatable) or the environment
variable ``TASKSTORE_WATCH_NAMESPACES`` (a comma-separated list) names some. It logs in
with in-cluster credentials, else the current kubeconfig (``KUBECONFIG``). It runs
standalone, unless ``TASKSTORE_PEERING`` names a kopf peering object: then one of the
replicas sharing it works and the others wait. The init container that copies the
library into agent pods runs ``--library-image`` (else ``TASKSTORE_LIBRARY_IMAGE``, else
the operator's own published image of this version, which holds the library).
"""

import argparse
import importlib.metadata
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Final

import kopf
from prometheus_client import start_http_server

# Importing the wiring registers the handlers with kopf's default registry.
import taskstore_operator.kopf_wiring  # noqa: F401
from taskstore_operator.kube.api import connect
from taskstore_operator.plan.observed import Settings

log = logging.getLogger("taskstore_operator")

WATCH_NAMESPACES_ENV: Final = "TASKSTORE_WATCH_NAMESPACES"
PEERING_ENV: Final = "TASKSTORE_PEERING"
LIBRARY_IMAGE_ENV: Final = "TASKSTORE_LIBRARY_IMAGE"
# Where the operator's image is published (the chart's image.repository default).
IMAGE_REPOSITORY: Final = "ghcr.io/tealagents/taskstore-operator"
# kopf pauses every peer when several share the highest priority, so each draws its own.
MAX_PEER_PRIORITY: Final = 2**31 - 1
DEFAULT_METRICS_PORT: Final = 8080
DEFAULT_HEALTH_PORT: Final = 8081


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="taskstore-operator", description=__doc__)
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help=f"a namespace to watch (repeatable); default: ${WATCH_NAMESPACES_ENV}, else all",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="port of the Prometheus metrics (0: none)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=DEFAULT_HEALTH_PORT,
        help="port of the liveness probe GET /healthz (0: none)",
    )
    parser.add_argument(
        "--library-image",
        default=os.environ.get(LIBRARY_IMAGE_ENV) or default_library_image(),
        help=(
            "image of the init container that copies the library into agent pods; "
            f"default: ${LIBRARY_IMAGE_ENV}, else %(default)s"
        ),
    )
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    return parser.parse_args(argv)


def default_library_image() -> str:
    """The operator's own published image of the installed version (it holds the library)."""
    distribution = importlib.metadata.packages_distributions()["taskstore_operator"][0]
    return f"{IMAGE_REPOSITORY}:{importlib.metadata.version(distribution)}"


def watched_namespaces(flags: Sequence[str], environment: str | None) -> list[str]:
    """The namespaces to watch: the flags, else the environment variable; empty means all."""
    names = list(flags) or (environment or "").split(",")
    return [name.strip() for name in names if name.strip()]


def report_unknown_namespaces(
    namespaces: Sequence[str], exists: Callable[[str], bool]
) -> list[str]:
    """Log an error for each watched namespace that does not exist; return them."""
    unknown = [name for name in namespaces if not exists(name)]
    for name in unknown:
        log.error(
            "watched namespace %r does not exist: nothing is served there until it is created "
            "(set by --namespace or %s)",
            name,
            WATCH_NAMESPACES_ENV,
        )
    return unknown


def main(argv: Sequence[str] | None = None) -> None:
    """Run the operator until it is stopped."""
    args = parse_args(argv)
    kopf.configure(verbose=args.verbose)
    logging.getLogger("taskstore_operator").setLevel(
        logging.DEBUG if args.verbose else logging.INFO
    )
    if args.metrics_port:
        start_http_server(args.metrics_port)
    namespaces = watched_namespaces(args.namespace, os.environ.get(WATCH_NAMESPACES_ENV))
    if namespaces:
        report_unknown_namespaces(namespaces, connect().namespace_exists)
    peering = os.environ.get(PEERING_ENV) or None
    # kopf reads a port 0 as 80, so 0 turns the endpoint off instead.
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    kopf.run(
        standalone=peering is None,
        peering_name=peering,
        priority=secrets.randbelow(MAX_PEER_PRIORITY) if peering else None,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=Settings(library_image=args.library_image)),
    )


if __name__ == "__main__":
    main()
