"""Regenerate every generated file of the repository, or check that none is stale.

  python -m taskstore_dev.generate           write every file that differs (make generate)
  python -m taskstore_dev.generate --check   exit 1 naming each stale file (make test)

Each file derives from one source: the CRD copies from the models
(``taskstore_operator.api.crd``), the chart's RBAC rules and the RBAC table of
docs/install.md from the table of kinds (``taskstore_operator.api.kinds``), and the plain
manifests from the chart (``helm template``). Without helm, ``--check`` skips the plain
manifests, except under ``CI=true``.
"""

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from taskstore_dev import manifests, paths, rbac
from taskstore_operator.api.crd import render_crd_yaml


@dataclass(frozen=True)
class Generated:
    """A generated file and the function that renders its expected content."""

    path: Path
    render: Callable[[], str]


def _install_doc() -> str:
    """docs/install.md with its RBAC table rendered anew."""
    return rbac.replace_table(paths.INSTALL_DOC.read_text())


# In dependency order: the plain manifests render the chart, CRD and rules included.
GENERATED: tuple[Generated, ...] = (
    Generated(paths.DEPLOY_CRD_PATH, render_crd_yaml),
    Generated(paths.CHART_CRD_PATH, render_crd_yaml),
    Generated(paths.RBAC_RULES_PATH, rbac.render_rules_template),
    Generated(paths.INSTALL_DOC, _install_doc),
    Generated(paths.MANIFEST_PATH, manifests.render_manifests),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Write every stale file, or with --check name them and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m taskstore_dev.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    ci = os.environ.get("CI", "").lower() == "true"
    status = 0
    for target in GENERATED:
        relative = target.path.relative_to(paths.REPO_ROOT)
        try:
            expected = target.render()
        except manifests.HelmNotFoundError as error:
            print(f"{relative}: not checked: {error}", file=sys.stderr)
            status = status if args.check and not ci else 2
            continue
        except RuntimeError as error:  # helm template refused the chart
            print(f"{relative}: {error}", file=sys.stderr)
            status = 2
            continue
        if target.path.is_file() and target.path.read_text() == expected:
            continue
        if args.check:
            print(f"{relative} is stale; run make generate", file=sys.stderr)
            status = status or 1
        else:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            target.path.write_text(expected)
            print(f"wrote {relative}")
    return status


if __name__ == "__main__":
    sys.exit(main())
