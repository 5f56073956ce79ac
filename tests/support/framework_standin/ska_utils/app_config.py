"""Stand-in ``AppConfig``: only registered settings, read from the environment when built.

Facts 7-8: ``get`` raises ``KeyError`` for a name nobody registered, and the JSON objects in
``TA_ENV_GLOBAL_STORE`` and ``TA_ENV_STORE`` are copied into ``os.environ`` first, over
what the container set.
"""

import json
import os
from typing import ClassVar

from pydantic import BaseModel

ENV_STORES = ("TA_ENV_GLOBAL_STORE", "TA_ENV_STORE")


class Config(BaseModel):
    """One registered setting."""

    env_name: str
    is_required: bool
    default_value: str | None


class AppConfig:
    """The registered settings' values, read when built."""

    configs: ClassVar[list[Config]] = []

    @classmethod
    def add_configs(cls, configs: list[Config]) -> None:
        """Register settings (a name registered again takes the new definition)."""
        known = {config.env_name: config for config in cls.configs}
        known.update({config.env_name: config for config in configs})
        cls.configs = list(known.values())

    def __init__(self) -> None:
        for store in ENV_STORES:
            for name, value in json.loads(os.environ.get(store) or "{}").items():
                os.environ[name] = value
        self.props = {c.env_name: os.environ.get(c.env_name, c.default_value) for c in self.configs}
        for config in self.configs:
            if config.is_required and self.props[config.env_name] is None:
                raise ValueError(f"Missing required configuration key: {config.env_name}")

    def get(self, key: str) -> str | None:
        """A registered setting's value; ``KeyError`` for any other name."""
        return self.props[key]
