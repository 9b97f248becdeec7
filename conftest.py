"""Root conftest: the real-infrastructure fixtures shared by every test tree."""

pytest_plugins = ["hvc.devinfra.pytest_plugin"]
