"""Shared pytest configuration: the local control plane fixtures come from the envtest plugin."""

pytest_plugins = ["taskstore_dev.envtest.pytest_plugin"]
