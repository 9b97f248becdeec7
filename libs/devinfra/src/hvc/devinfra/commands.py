"""A command listener for tests that count round trips to the real store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, monitoring


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


@asynccontextmanager
async def watched_database(uri: str, prefix: str) -> AsyncIterator[tuple[Any, CommandLog]]:
    """A scratch database whose client logs every command, dropped afterwards."""
    log = CommandLog()
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, event_listeners=[log])
    db = client[f"{prefix}_{uuid.uuid4().hex[:8]}"]
    try:
        yield db, log
    finally:
        await client.drop_database(db.name)
        await client.close()
