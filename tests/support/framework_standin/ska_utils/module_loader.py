"""Stand-in ``ModuleLoader`` (fact 3): a module is a file, registered under its stem."""

import importlib.util
import sys
from types import ModuleType


class ModuleLoader:
    """Loads a ``.py`` file as the module named by its file name up to the first dot."""

    @staticmethod
    def load_module(module: str) -> ModuleType:
        """Load ``module`` (a file path); it replaces any module of the same stem."""
        stem = module.split("/")[-1].split(".")[0]
        spec = importlib.util.spec_from_file_location(stem, module)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {module!r} as a file")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[stem] = loaded
        spec.loader.exec_module(loaded)
        return loaded
