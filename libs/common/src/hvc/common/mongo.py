"""The MongoDB client factory: PyMongo's AsyncMongoClient, one per process."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from hvc.common.settings import MongoSettings


def make_client(settings: MongoSettings, *, app_name: str = "hvc") -> AsyncMongoClient[Any]:
    kwargs: dict[str, Any] = {
        "appname": app_name,
        "tz_aware": True,
        "serverSelectionTimeoutMS": settings.server_selection_timeout_ms,
    }
    if settings.tls:
        kwargs["tls"] = True
        if settings.tls_ca_file:
            kwargs["tlsCAFile"] = settings.tls_ca_file
    return AsyncMongoClient(settings.uri.get_secret_value(), **kwargs)


async def ping(client: AsyncMongoClient[Any]) -> None:
    await client.admin.command("ping")
