"""The MongoDB client factory: PyMongo's AsyncMongoClient, one per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.cursor import AsyncCursor
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


Cursor = AsyncCursor[Doc] | AsyncCommandCursor[Doc]


async def all_of(cursor: Cursor) -> list[Doc]:
    """Every document of `cursor`, which is closed on the server whatever happens.

    Every read goes through here or `opened`: PyMongo's async cursors send no `killCursors`
    when they are collected, so a read abandoned half-way (a cancelled request, an exception)
    left its cursor open on the server for as long as the pooled connection lived. On the
    local FerretDB each open cursor holds one of the database's 100 SQLite connections, and
    once they were all held, every query on that database, and every command queued behind
    an index build, hung (README, "The local store").
    """
    async with cursor:
        return await cursor.to_list()


@asynccontextmanager
async def opened(cursor: Cursor) -> AsyncIterator[Cursor]:
    """`cursor` to iterate in a block, closed on the server when the block is left."""
    async with cursor:
        yield cursor


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
    items = await all_of(collection.find(query).sort(sort).skip(offset).limit(limit))
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
