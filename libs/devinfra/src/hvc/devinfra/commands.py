"""A command listener for tests that count round trips to the real store."""

from __future__ import annotations

from typing import Any

from pymongo import monitoring


class CommandLog(monitoring.CommandListener):
    """Every command the client started: its name and its document."""

    def __init__(self) -> None:
        self.started_commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.started_commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, *names: str) -> list[dict[str, Any]]:
        return [c for n, c in self.started_commands if n in names]

    def clear(self) -> None:
        self.started_commands.clear()
