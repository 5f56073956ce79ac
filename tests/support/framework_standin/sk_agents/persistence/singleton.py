"""One instance per class and process, as the framework's factory is."""

from typing import Any, ClassVar


class Singleton(type):
    """Metaclass: the first instance is returned by every later call."""

    instances: ClassVar[dict[type, Any]] = {}

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls not in Singleton.instances:
            Singleton.instances[cls] = super().__call__(*args, **kwargs)
        return Singleton.instances[cls]
