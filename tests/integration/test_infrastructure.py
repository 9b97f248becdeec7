"""The real broker and store answer, and the local bootstrap made every registry topic."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from hvc.common.topics import TOPICS

pytestmark = pytest.mark.integration


async def test_every_registry_topic_exists_with_its_partitions(infra):
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
    assert partitions == {t.name: t.partitions for t in TOPICS}


def test_the_broker_reports_the_version_we_installed(infra):
    if infra.source != "local":
        pytest.skip("the version line is read from the locally started broker's log")
    from hvc.devinfra import local

    log = (local.Instance.named("test").logs / "kafka.log").read_text(errors="replace")
    assert f"Kafka version: {infra.kafka_version}" in log


async def test_store_answers_build_info_through_async_client(infra):
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    try:
        info = await client.admin.command("buildInfo")
    finally:
        await client.close()
    assert info["ok"] == 1.0
    assert int(info["version"].split(".")[0]) >= 7  # FerretDB and production speak MongoDB 7


async def test_unique_index_violation_is_a_duplicate_key_error(infra):
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    try:
        await db.inbox.create_index([("event_id", ASCENDING)], unique=True)
        await db.inbox.insert_one({"event_id": "e-1", "n": 1})
        with pytest.raises(DuplicateKeyError):
            await db.inbox.insert_one({"event_id": "e-1", "n": 2})
        assert await db.inbox.count_documents({}) == 1
        # A compound unique key: the same event for another customer is another document.
        await db.grants.create_index([("customer_id", 1), ("cause", 1)], unique=True)
        await db.grants.insert_one({"customer_id": "a", "cause": "x"})
        await db.grants.insert_one({"customer_id": "b", "cause": "x"})
        with pytest.raises(DuplicateKeyError):
            await db.grants.insert_one({"customer_id": "a", "cause": "x"})
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_a_range_of_string_ids_finds_exactly_the_strings_in_it(infra):
    # The local store pre-filters such a range by the `_id` index (a patch of ours, see
    # FERRETDB_PATCHES); the ids here are the cases where the JSON text of a string does not
    # sort like the string: characters JSON escapes, ones below '"', other types, non-ASCII.
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    tails = ["", " ", "!", '"', "\\", "<x", "&", "\t", "a", "z", "~", "é", "中", "|", "}"]
    ids: list[object] = [f"c1|{t}" for t in tails] + [f"c1{t}" for t in tails]
    ids += ["c0|a", "c1", "c2|a", "c1{", 42, 1.5, "C1|a", "c1|\u0000"]
    ids = list(dict.fromkeys(ids))
    try:
        await db.docs.insert_many([{"_id": i} for i in ids])
        for lo, hi in [
            ("c1|", "c1}"),
            ("c1|!", "c1|~"),
            ("c1", "c1|"),
            ("c", "d"),
            ("c1|a", "c1|a"),
            ("c1 ", "c1!"),
            ("c1|<", "c1|>"),
        ]:
            want = sorted(i for i in ids if isinstance(i, str) and lo <= i < hi)
            got = sorted([d["_id"] async for d in db.docs.find({"_id": {"$gte": lo, "$lt": hi}})])
            assert got == want, (lo, hi)
            got = sorted([d["_id"] async for d in db.docs.find({"_id": {"$gt": lo, "$lte": hi}})])
            assert got == sorted(i for i in ids if isinstance(i, str) and lo < i <= hi), (lo, hi)
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_a_find_sorted_by_id_answers_in_id_order_or_fails(infra):
    # The local store has SQLite sort a find sorted by `_id` instead of reading the whole
    # result into its memory to sort it (a patch of ours, see FERRETDB_PATCHES): the order
    # of the ids this project writes, both ways, with filters and across batches; and ids
    # whose JSON text sorts otherwise (escaped characters, other types) are answered in BSON
    # order or refused, never in a wrong order.
    from pymongo.errors import OperationFailure

    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    ids = [f"C{c:08d}" for c in range(0, 300, 7)]
    ids += [f"{c} 2025-{m:02d} B{c}-{m}" for c in ids[:20] for m in (1, 2, 11)]
    ids += ["C0000001|x", "C00000014~", "M0001 é", "M0001 中"]
    mixed: list[object] = ["a", 'a"b', "a\\b", "a\tb", "a<b", "b", 42, 1.5]
    try:
        shuffled = sorted(ids, key=lambda i: hash(i) % 1000)
        await db.docs.insert_many([{"_id": i, "n": n} for n, i in enumerate(shuffled)])
        assert [d["_id"] async for d in db.docs.find({}).sort("_id", 1)] == sorted(ids)
        got = [d["_id"] async for d in db.docs.find({}, batch_size=7).sort("_id", -1)]
        assert got == sorted(ids, reverse=True)
        some = {"n": {"$gte": 40}}
        got = [d["_id"] async for d in db.docs.find(some).sort("_id", 1)]
        assert got == sorted(i for n, i in enumerate(shuffled) if n >= 40)
        within = {"_id": {"$gte": "C00000007", "$lt": "C00000070"}}
        got = [d["_id"] async for d in db.docs.find(within).sort("_id", 1).limit(5)]
        assert got == sorted(i for i in ids if "C00000007" <= i < "C00000070")[:5]
        await db.mixed.insert_many([{"_id": i} for i in reversed(mixed)])
        bson_order = sorted(i for i in mixed if not isinstance(i, str)) + sorted(
            i for i in mixed if isinstance(i, str)
        )
        try:
            got = [d["_id"] async for d in db.mixed.find({}).sort("_id", 1)]
        except OperationFailure as exc:
            assert "_id order" in str(exc), exc
        else:
            assert got == bson_order
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_an_in_of_string_ids_finds_exactly_those_documents(infra):
    # The local store pre-filters `{_id: {$in: [strings]}}` by the `_id` index (a patch of
    # ours, see FERRETDB_PATCHES): the ids JSON escapes or encodes differently, ids of other
    # types, more conditions, and an `$in` longer than the patch pushes down.
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_uri)
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    ids: list[object] = ["c1", 'c"2', "c\\3", "c\t4", "c<5>&", "中6", "é7", "c8", 42, 1.5]
    ids += [f"x{i:04d}" for i in range(600)]
    try:
        await db.docs.insert_many([{"_id": i, "n": n} for n, i in enumerate(ids)])
        strings = [i for i in ids[:10] if isinstance(i, str)]
        for wanted in [strings, ["c1", "nobody"], ["nobody"], [*strings, 42]]:
            got = sorted(map(str, [d["_id"] async for d in db.docs.find({"_id": {"$in": wanted}})]))
            assert got == sorted(str(i) for i in ids if i in wanted), wanted
        got = [d["_id"] async for d in db.docs.find({"_id": {"$in": strings}, "n": {"$gte": 2}})]
        assert sorted(got) == sorted(strings[2:])
        many = [f"x{i:04d}" for i in range(0, 600, 1)]  # past the patch's 500: scanned
        assert len([d async for d in db.docs.find({"_id": {"$in": many}})]) == 600
    finally:
        await client.drop_database(db.name)
        await client.close()
