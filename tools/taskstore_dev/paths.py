"""The repository's files that the tooling reads or generates, each named once."""

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CHART_DIR: Final = REPO_ROOT / "charts" / "taskstore-operator"
CRD_FILE_NAME: Final = "taskstores.tealagents.io.yaml"
# The CRD as `kubectl apply` installs it (the demo, the tests, the docs).
DEPLOY_CRD_PATH: Final = REPO_ROOT / "deploy" / "crds" / CRD_FILE_NAME
# The chart renders this copy from templates/crds.yaml (Helm never upgrades files in crds/).
CHART_CRD_PATH: Final = CHART_DIR / "files" / "crds" / CRD_FILE_NAME
RBAC_RULES_PATH: Final = CHART_DIR / "templates" / "_rules.tpl"
MANIFEST_PATH: Final = REPO_ROOT / "deploy" / "taskstore-operator.yaml"
SAMPLES_DIR: Final = REPO_ROOT / "deploy" / "samples"
INSTALL_DOC: Final = REPO_ROOT / "docs" / "install.md"
TESTBINS_DIR: Final = REPO_ROOT / "scripts" / "testbins"
# The agent sandbox's command (taskstore_dev.sandbox in the project's virtualenv).
AGENT_SANDBOX: Final = REPO_ROOT / "scripts" / "agent-sandbox"
