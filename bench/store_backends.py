"""The local store's two backends side by side: FerretDB v1.24 (this project's patched build) on
SQLite and on PostgreSQL (Debian's), each fresh, on this project's own access patterns.

`make bench BENCH_ARGS="--only store"`. PostgreSQL runs as the `postgres` user from Debian's
package (`apt-get install postgresql` if it is missing), on a private port and data folder, and
is stopped at the end. Every step is bounded: a step that hangs is reported as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, UpdateOne

from hvc.devinfra import local

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STEP_TIMEOUT_S = 60.0


def _free_port_pair() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port + 1))
            return port


@contextlib.contextmanager
def postgres(home: Path) -> Iterator[str]:
    """A throw-away PostgreSQL 15 server; yields FerretDB's --postgresql-url for it."""
    if not (PG_BIN / "initdb").exists():
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True)
    data, port = home / "pgdata", _free_port_pair()
    shutil.rmtree(home, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.chown(home, "postgres")
    shutil.chown(data, "postgres")

    def as_pg(*cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)

    as_pg(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    as_pg(
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(home / "postgres.log"),
        "-o",
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c max_connections=300",
        "-w",
        "start",
    )
    try:
        as_pg(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "ferretdb")
        yield f"postgres://postgres@127.0.0.1:{port}/ferretdb"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            as_pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def ferretdb(name: str, handler_args: list[str]) -> Iterator[str]:
    """A private FerretDB of this project's build with the given backend; yields its URI."""
    port = _free_port_pair()
    inst = local.Instance(
        name=name, root=local.project_root(), kafka_port=0, mongo_port=port, http_base_port=0
    )
    binary = local.build_ferretdb(inst)
    home = inst.home / "ferretdb"
    shutil.rmtree(inst.home, ignore_errors=True)
    (home / "data").mkdir(parents=True)
    cmd = [
        str(binary),
        *[a.replace("{data}", str(home / "data")) for a in handler_args],
        f"--state-dir={home}",
        f"--listen-addr=127.0.0.1:{port}",
        f"--debug-addr=127.0.0.1:{port + 1}",
        "--telemetry=disable",
        "--log-level=warn",
    ]
    local._spawn(inst, "ferretdb", cmd, marker=f"--state-dir={home}", env=dict(os.environ))
    try:
        local._wait("FerretDB", lambda: local._port_open(port), 60, inst, "ferretdb")
        yield inst.mongo_uri
    finally:
        local.stop(inst, "ferretdb")
        shutil.rmtree(inst.home, ignore_errors=True)


async def _timed(what: Callable[[], Awaitable[Any]]) -> tuple[float | None, Any]:
    t0 = time.perf_counter()
    try:
        out = await asyncio.wait_for(what(), STEP_TIMEOUT_S)
    except TimeoutError:
        return None, None
    return time.perf_counter() - t0, out


class _Figures(dict[str, float | None]):
    """The figures of one backend, each printed as it is taken (a later step may hang)."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def __setitem__(self, name: str, value: float | None) -> None:
        super().__setitem__(name, value)
        shown = "hung" if value is None else f"{value:,.2f}"
        print(f"  store {self.backend:<11}{name:<34}{shown:>14}", flush=True)


async def patterns(uri: str, documents: int, backend: str) -> dict[str, float | None]:
    """This project's own access patterns, as the figures of one backend."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, maxPoolSize=150)
    db = client[f"bench_store_{uuid.uuid4().hex[:6]}"]
    coll = db["docs"]
    ids = [f"C{i:07d}" for i in range(documents)]
    rng = random.Random(7)
    out = _Figures(backend)
    try:

        async def bulk_upserts() -> None:
            for i in range(0, documents, 500):
                ops = [
                    UpdateOne({"_id": c}, {"$set": {"v": 1, "pad": "x" * 200}}, upsert=True)
                    for c in ids[i : i + 500]
                ]
                await coll.bulk_write(ops, ordered=False)

        took, _ = await _timed(bulk_upserts)
        out["bulk_upserts_docs_per_s"] = documents / took if took else None

        async def bulk_updates() -> None:  # the same documents again: updates, not inserts
            for i in range(0, documents, 500):
                ops = [UpdateOne({"_id": c}, {"$inc": {"v": 1}}) for c in ids[i : i + 500]]
                await coll.bulk_write(ops, ordered=False)

        took, _ = await _timed(bulk_updates)
        out["bulk_updates_docs_per_s"] = documents / took if took else None

        sample = rng.sample(ids, min(2000, documents))

        async def finds() -> None:
            for c in sample:
                await coll.find_one({"_id": c})

        took, _ = await _timed(finds)
        out["find_by_id_ms"] = took / len(sample) * 1000 if took else None

        async def ranges() -> None:
            for c in sample[:500]:
                await coll.find({"_id": {"$gte": c, "$lt": c + "~"}}).to_list()

        took, _ = await _timed(ranges)
        out["id_range_scan_ms"] = took / 500 * 1000 if took else None

        async def full_scan() -> int:
            return len(await coll.find({}, batch_size=2000).to_list())

        took, n = await _timed(full_scan)
        out["full_scan_docs_per_s"] = n / took if took else None

        await db["counter"].insert_one({"_id": "c", "n": 0})

        async def concurrent_incs() -> None:
            await asyncio.gather(
                *(db["counter"].update_one({"_id": "c"}, {"$inc": {"n": 1}}) for _ in range(100))
            )

        took, _ = await _timed(concurrent_incs)
        out["100_concurrent_incs_s"] = took
        if took is not None:
            doc = await db["counter"].find_one({"_id": "c"})
            out["100_concurrent_incs_kept"] = float(doc["n"]) if doc else None

        held = []
        for _ in range(100):
            cursor = coll.find({}, batch_size=1)
            await anext(cursor)
            held.append(cursor)

        async def index_with_open_cursors() -> None:
            other: AsyncMongoClient[Any] = AsyncMongoClient(uri)
            try:
                await other[db.name]["docs"].create_index("v")
                await other.admin.command("ping")
            finally:
                await other.close()

        took, _ = await _timed(index_with_open_cursors)
        out["index_with_100_open_cursors_s"] = took
        # the clean-up is bounded too: after a hung step the store may not answer it
        await _timed(lambda: asyncio.gather(*(cursor.close() for cursor in held)))
        await _timed(lambda: client.drop_database(db.name))
    finally:
        await client.close()
    return out


def run(documents: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    root = local.project_root() / ".local" / "bench-store"
    results: dict[str, dict[str, float | None]] = {}
    with ferretdb("bench-store-sqlite", ["--handler=sqlite", "--sqlite-url=file:{data}/"]) as uri:
        results["sqlite"] = asyncio.run(patterns(uri, documents, "sqlite"))
    with (
        postgres(root / "postgres") as pg_url,
        ferretdb("bench-store-pg", ["--handler=postgresql", f"--postgresql-url={pg_url}"]) as uri,
    ):
        results["postgresql"] = asyncio.run(patterns(uri, documents, "postgresql"))
    names = list(results["sqlite"])
    print(f"{'store pattern':<34}{'SQLite':>14}{'PostgreSQL':>14}")
    for name in names:
        row = [results[b].get(name) for b in ("sqlite", "postgresql")]
        shown = ["hung" if v is None else f"{v:,.2f}" for v in row]
        print(f"{name:<34}{shown[0]:>14}{shown[1]:>14}")
        for backend, value in zip(("sqlite", "postgresql"), row, strict=True):
            figures[f"store_{backend}_{name}"] = -1.0 if value is None else value
    return figures
