"""Regenerate every generated file of the repository, or check that none is stale.

  python -m taskstore_dev.generate           write every file that differs
  python -m taskstore_dev.generate --check   exit 1 naming each stale file

``make generate`` and ``make test`` run these. Each file is derived from one source:
the RBAC rules of the chart and the RBAC table of docs/install.md from
``taskstore_operator.api.kinds``.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from taskstore_dev import paths, rbac


@dataclass(frozen=True)
class Generated:
    """A generated file and the function that renders its expected content."""

    path: Path
    render: Callable[[], str]


def _install_doc() -> str:
    """docs/install.md with its RBAC table rendered anew."""
    return rbac.replace_table(paths.INSTALL_DOC.read_text())


# In dependency order: a later file may be rendered from an earlier one.
GENERATED: tuple[Generated, ...] = (
    Generated(paths.RBAC_RULES_PATH, rbac.render_rules_template),
    Generated(paths.INSTALL_DOC, _install_doc),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Write every stale file, or with --check name them and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m taskstore_dev.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for target in GENERATED:
        expected = target.render()
        if target.path.is_file() and target.path.read_text() == expected:
            continue
        relative = target.path.relative_to(paths.REPO_ROOT)
        stale.append(relative)
        if args.check:
            print(f"{relative} is stale; run make generate", file=sys.stderr)
        else:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            target.path.write_text(expected)
            print(f"wrote {relative}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
