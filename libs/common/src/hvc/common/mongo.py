"""The MongoDB client factory: PyMongo's AsyncMongoClient, one per process."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hvc.common.settings import MongoSettings

Doc = dict[str, Any]


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


async def insert_new(collection: AsyncCollection[Doc], docs: list[Doc]) -> set[str]:
    """Insert what is not there yet; return the `_id`s this call inserted.

    The idempotency primitive of insert-only state: a document whose `_id` names its cause is
    written once, and a second writer learns it lost without overwriting anything.
    """
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return {d["_id"] for d in docs} - {docs[e["index"]]["_id"] for e in errors}
    return {d["_id"] for d in docs}


async def page(
    collection: AsyncCollection[Doc],
    query: Doc,
    sort: list[tuple[str, int]],
    limit: int,
    offset: int,
) -> tuple[list[Doc], int]:
    """One page of `query` in `sort` order, and the total that matches.

    The total is counted only when the page cannot tell it: a page shorter than `limit` that
    holds something, or that starts at 0, ends the matches (offset + its length). Most pages a
    customer view reads are such pages, and the count is a second round trip to the store.
    """
    items = [d async for d in collection.find(query).sort(sort).skip(offset).limit(limit)]
    if len(items) < limit and (items or offset == 0):
        return items, offset + len(items)
    return items, await collection.count_documents(query)


async def set_once(collection: AsyncCollection[Doc], filter_: Doc, update: Doc) -> bool:
    """Apply `update` where `filter_` matches, creating the document if there is none.

    Two upserts racing on a new document: one gets a duplicate-key error on _id, which proves
    the document now exists, so it is retried as a plain update. Returns False when the filter
    still does not match: the fact is already there (a redelivery) or is older than what is.
    """
    try:
        res = await collection.update_one(filter_, update, upsert=True)
    except DuplicateKeyError:
        res = await collection.update_one(filter_, update)
        return bool(res.modified_count)
    return bool(res.modified_count or res.upserted_id is not None)
