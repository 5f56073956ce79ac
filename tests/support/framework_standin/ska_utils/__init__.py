"""Stand-in for the framework's ``ska_utils``: settings and the module loader."""

from ska_utils.app_config import AppConfig, Config
from ska_utils.module_loader import ModuleLoader

__all__ = ["AppConfig", "Config", "ModuleLoader"]
