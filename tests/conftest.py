"""Shared pytest configuration: the control plane (envtest plugin) and HA-tier fixtures."""

pytest_plugins = ["taskstore_dev.envtest.pytest_plugin", "support.ha_fixtures"]
