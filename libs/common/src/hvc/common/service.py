"""The runtime every service shares: its pipeline on the stream engine (hvc.common.streams),
its producer, its MongoDB client, its periodic steps, and its HTTP side."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from hvc.common import problems, topics, tracing
from hvc.common.health import Readiness, health_router
from hvc.common.kafka import Publisher, idempotent_producer
from hvc.common.logging import configure_logging
from hvc.common.mongo import make_client, ping
from hvc.common.settings import (
    HvcSettings,
    KafkaSettings,
    MongoSettings,
    Profile,
    check_production,
)
from hvc.common.streams import BeforeWrite

log = logging.getLogger(__name__)


def stream_group(service: str, database: str | None = None) -> str:
    """The consumer group of a service's pipeline on the engine (hvc.common.streams). The
    engine names its state directory and changelog topics after it, and the pipeline writes
    its views to the service's database: state and views are one unit, so a service pointed at
    another database than its own (`hvc_<service>`) gets a group, state and changelogs of its
    own too, and its views start from the same history as its state."""
    if database is None or database == f"hvc_{service}":
        return f"{service}-stream"
    return f"{service}-stream-{database}"


def settle_heap() -> None:
    """Take what start-up made (modules, settings, loaded state) out of the cyclic
    collector's scans.

    A full collection walks every tracked object, and a service's imports alone (the engine,
    FastAPI, pydantic, protobuf) are over 100,000 of them (the gateway's: 110,000, 75 ms a
    full collection idle). Under load every service paused 60-190 ms for one every few
    seconds on the bench machine, and those pauses were the gateway's p99. Frozen objects
    are still freed by reference counting; only cycles among them wait for the process to
    end, and start-up objects live that long anyway.
    """
    gc.collect()
    gc.freeze()


class ServiceRuntime:
    """One per process: built by the service's bootstrap(), started by the HTTP lifespan."""

    def __init__(
        self,
        name: str,
        *,
        hvc: HvcSettings | None = None,
        kafka: KafkaSettings | None = None,
        mongo: MongoSettings | None = None,
    ) -> None:
        self.name = name
        self.hvc = hvc or HvcSettings()
        self.kafka = kafka or KafkaSettings()
        self.mongo_settings = mongo or MongoSettings()
        check_production(self.hvc, self.kafka, self.mongo_settings)
        Path(self.hvc.data_dir, name).mkdir(parents=True, exist_ok=True)
        self.mongo: AsyncMongoClient[Any] = make_client(self.mongo_settings, app_name=name)
        self.db: AsyncDatabase[Any] = self.mongo[self.mongo_settings.database or f"hvc_{name}"]
        self.readiness = Readiness()
        self.readiness.add("kafka", self._kafka_ready)
        self.readiness.add("mongodb", lambda: ping(self.mongo))
        self.readiness.add("stream", self._stream_ready)
        self._admin: Any = None
        self._blocked_by: str | None = None
        self._started = False
        self._on_start: list[Callable[[], Awaitable[None]]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self.inputs: list[str] = []  # every topic the service consumes
        self._pipelines: list[Any] = []  # hvc.common.streams pipelines, run at start
        # Renewed when the broker has lost its sequences (hvc.common.kafka.Publisher).
        self._publisher = Publisher(lambda: idempotent_producer(self.kafka), name)
        self.streams: list[Any] = []  # their running StreamApps
        self._loops: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = []
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._settle_heap = False  # serve() sets it: a process of its own, not a test's
        self._metrics: Any = None  # the metrics port's server, when it has one

    # -- streams -------------------------------------------------------------------------

    def stream(
        self,
        pipeline: Any,
        *,
        commit_interval_s: float = 1.0,
        before_write: Mapping[str, BeforeWrite] | None = None,
        clock_tick_s: float | None = None,
        event_clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """Run `pipeline` (hvc.common.streams) on the engine in a thread of its own from
        start to stop, its views written to this service's database, shown in /readyz.
        `before_write`: per collection, a step each batch of its views goes through before
        it is written (see hvc.common.streams.MongoViews). `clock_tick_s`: publish the wall
        clock to every partition of `topics.CLOCK` that often (a pipeline made with
        `clock=True` reads it), so that a partition with no records still reaches its due
        times; every replica publishes, and a tick more moves no time twice. `event_clock`:
        the ticks carry its time instead, as event time (`streams.EVENT_TICKS`: a pipeline
        made with `event_ticks` follows them), once it has seen an event."""
        from hvc.common.streams import event_tick_source

        for topic in pipeline.messages:
            self._consumes(topic)
        self._pipelines.append((pipeline, commit_interval_s, dict(before_write or {})))
        # Its event-time ticks are its group's (every replica's), no other deployment's.
        group = stream_group(self.name, self.mongo_settings.database)
        pipeline.tick_source = event_tick_source(group)
        if clock_tick_s is not None:
            tick = partial(self._tick_clock, event_clock, event_tick_source(group))
            self.every(clock_tick_s, "clock-tick", tick)

    async def _tick_clock(
        self, event_clock: Callable[[], dt.datetime] | None = None, event_source: str = ""
    ) -> None:
        from hvc.events.v1 import clock_pb2

        source = f"{self.name}@{socket.gethostname()}"
        at = dt.datetime.now(dt.UTC)
        if event_clock is not None:
            source, at = f"{event_source}{socket.gethostname()}", event_clock()
            if at.year <= 2000:  # no event seen yet (hvc.common.clock.EventClock)
                return
        tick = clock_pb2.ClockTicked(source=source)
        tick.occurred_at.FromDatetime(at)
        value = tick.SerializeToString()
        await asyncio.gather(
            *(
                self._publisher.send(topics.CLOCK, None, value, [], partition=p)
                for p in range(topics.spec(topics.CLOCK).partitions)
            )
        )

    def _start_streams(self) -> None:
        from hvc.common.streams import MongoViews, StreamApp

        for pipeline, commit_interval_s, before_write in self._pipelines:
            views = MongoViews(
                make_client(self.mongo_settings, app_name=self.name),
                self.db.name,
                before_write=before_write,
            )
            settings = self._engine_settings(
                stream_group(self.name, self.mongo_settings.database),
                str(Path(self.hvc.data_dir) / self.name / "state"),
                commit_interval_s,
            )
            app = StreamApp(pipeline, settings, views)
            app.start()
            self.streams.append((app, views))

    def _engine_settings(
        self, group: str, state_dir: str, commit_interval_s: float, *, changelog: bool = True
    ) -> Any:
        """The engine's settings for one of this service's pipelines, on its connection."""
        from hvc.common.streams import EngineSettings

        return EngineSettings(
            bootstrap_servers=self.kafka.bootstrap_servers,
            consumer_group=group,
            state_dir=state_dir,
            commit_interval_s=commit_interval_s,
            client_config=self.kafka.librdkafka(),
            session_timeout_s=self.kafka.session_timeout_s,
            poll_timeout_s=self.kafka.poll_timeout_s,
            changelog=changelog,
            buffer_records=self.hvc.stream_buffer_records,
            buffer_per_partition=self.hvc.stream_buffer_per_partition,
            fetch_queue_kib=self.hvc.stream_fetch_queue_kib,
            fetch_min_bytes=self.hvc.stream_fetch_min_bytes,
            write_buffer_mib=self.hvc.stream_write_buffer_mib,
            block_cache_mib=self.hvc.stream_block_cache_mib,
            checkpoint_max_writes=self.hvc.stream_checkpoint_max_writes,
        )

    async def rebuild_views(
        self, idle_s: float = 10.0, since: Mapping[tuple[str, int], int] | None = None
    ) -> dict[str, Any]:
        """Write the views of this service's pipeline again from its input topics, as far back
        as their retention goes: a view document missing or stale is written again (a task
        or ledger entry the HTTP side moved on since is kept: those are written once). Runs on
        a group and a local state of its own, publishes nothing, and stops at the end offsets
        the inputs had when it started. Refused while the service's group has members: two
        writers of the same views would race (stop the service first).

        `since`: (topic, partition) -> the offset to start from instead of the beginning. The
        state then starts empty at those offsets, so this is right only where no customer's
        history starts before them (a test's own records on a shared broker)."""
        import tempfile

        from aiokafka import AIOKafkaConsumer, TopicPartition
        from confluent_kafka.admin import AdminClient

        from hvc.common.streams import MongoViews, rebuild_views

        if len(self._pipelines) != 1:
            raise RuntimeError(f"{self.name} has no pipeline on the stream engine")
        pipeline, commit_interval_s, before_write = self._pipelines[0]
        group = stream_group(self.name, self.mongo_settings.database)
        admin = AdminClient(
            {"bootstrap.servers": self.kafka.bootstrap_servers, **self.kafka.librdkafka()}
        )
        members = await asyncio.to_thread(_group_members, admin, group)
        if members:
            raise RuntimeError(
                f"consumer group {group} has {members} member(s): stop {self.name} first"
            )
        probe = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap_servers, **self.kafka.client_kwargs()
        )
        await probe.start()
        try:
            tps = [
                TopicPartition(t, p)
                for t in pipeline.messages
                for p in range(topics.spec(t).partitions)
            ]
            begin, end = await probe.beginning_offsets(tps), await probe.end_offsets(tps)
        finally:
            await probe.stop()
        start = {(tp.topic, tp.partition): begin[tp] for tp in tps}
        start.update(since or {})
        targets = {
            (tp.topic, tp.partition): end[tp]
            for tp in tps
            if end[tp] > start[tp.topic, tp.partition]
        }
        rebuild_group = f"{group}-rebuild"
        await asyncio.to_thread(_delete_group, admin, rebuild_group)  # a run cut short's offsets
        if since:
            await asyncio.to_thread(_commit_offsets, self.kafka, rebuild_group, start)
        views = MongoViews(
            make_client(self.mongo_settings, app_name=f"{self.name}-rebuild"),
            self.db.name,
            before_write=before_write,
        )
        try:
            with tempfile.TemporaryDirectory(prefix=f"hvc-{self.name}-rebuild-") as state:
                settings = self._engine_settings(
                    rebuild_group, state, commit_interval_s, changelog=False
                )
                stats = await asyncio.to_thread(
                    rebuild_views, pipeline, settings, views, targets, idle_s
                )
        finally:
            await asyncio.to_thread(views.close)
        # Its offsets are of no further use: the next rebuild starts from the beginning again.
        await asyncio.to_thread(_delete_group, admin, rebuild_group)
        return {"group": rebuild_group, "partitions": len(targets), **stats}

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> object:
        """Publish and wait for the broker; a record published while one is handled names it
        (hvc.common.tracing)."""
        return await self._publisher.send(topic, key, value, [*headers, *tracing.headers()])

    def _consumes(self, topic_name: str) -> None:
        self.inputs.append(topic_name)
        topics.copartitioned({t: topics.spec(t).partitions for t in self.inputs})

    async def check_copartitioned(self, wait_s: float = 30.0) -> int:
        """The inputs as the broker has them: one partition count, or NotCoPartitioned (a
        topic created or altered by hand would split a customer's events across consumers),
        or InputsMissing once an input has not shown for `wait_s` (a topic just created
        reaches the broker's metadata a moment later)."""
        counts = await topics.wait_for_topics(
            self.kafka.bootstrap_servers, self.inputs, wait_s, **self.kafka.client_kwargs()
        )
        missing = sorted(set(self.inputs) - set(counts))
        if missing:
            raise topics.InputsMissing(
                f"input topics missing on the broker: {', '.join(missing)} (created by "
                "the bootstrap or Strimzi from the registry, not by a service)"
            )
        return topics.copartitioned(counts)

    # -- readiness -----------------------------------------------------------------------

    async def _kafka_ready(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.kafka.bootstrap_servers,
                request_timeout_ms=2000,
                **self.kafka.client_kwargs(),
            )
            try:
                await admin.start()
            except Exception:
                await admin.close()
                raise
            self._admin = admin
        try:
            await self._admin.describe_cluster()
        except Exception:
            admin, self._admin = self._admin, None
            await admin.close()
            raise

    async def _stream_ready(self) -> None:
        if not self._started:
            raise RuntimeError("stream app not started")
        if self._blocked_by is not None:
            raise RuntimeError(f"a periodic step failed: {self._blocked_by}")
        for app, _ in self.streams:
            if (problem := app.problem()) is not None:
                raise RuntimeError(problem)

    # -- lifecycle -----------------------------------------------------------------------

    def every(self, seconds: float, name: str, step: Callable[[], Awaitable[Any]]) -> None:
        """Run `step` every `seconds` while the service runs (timers). A failing step is
        logged and shows in /readyz until it succeeds again."""
        self._loops.append((name, seconds, step))

    async def _loop(self, name: str, seconds: float, step: Callable[[], Awaitable[Any]]) -> None:
        while True:
            try:
                await step()
                if self._blocked_by is not None and self._blocked_by.startswith(name):
                    self._blocked_by = None
            except Exception as exc:
                self._blocked_by = f"{name}: {type(exc).__name__}: {exc}"[:300]
                log.exception("periodic step failed", extra={"step": name})
            await asyncio.sleep(seconds)

    def on_start(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` before the stream starts (index creation, loading data)."""
        self._on_start.append(hook)

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` after the stream has stopped (closing clients)."""
        self._on_stop.append(hook)

    async def start(self) -> None:
        for hook in self._on_start:
            await hook()
        await self.check_copartitioned()
        await self._publisher.start()
        self._start_streams()
        self._loop_tasks = [
            asyncio.create_task(self._loop(*loop), name=loop[0]) for loop in self._loops
        ]
        if self.hvc.metrics_port is not None and self._metrics is None:
            from prometheus_client import start_http_server

            self._metrics, _ = start_http_server(self.hvc.metrics_port, addr=self.hvc.http_host)
        if self._settle_heap:
            settle_heap()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        for task in self._loop_tasks:
            task.cancel()
        await asyncio.gather(*self._loop_tasks, return_exceptions=True)
        self._loop_tasks = []
        if self._metrics is not None:
            self._metrics.shutdown()
            self._metrics = None
        for app, views in self.streams:
            await asyncio.to_thread(app.stop)
            await asyncio.to_thread(views.close)
        self.streams = []
        await self._publisher.stop()
        for hook in self._on_stop:
            await hook()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        await self.mongo.close()

    def http_app(
        self, *routers: APIRouter, title: str | None = None, gateway_only: bool = True
    ) -> FastAPI:
        """The service's HTTP side: health, readiness, metrics (unless on a port of their
        own) and its routers; with a service key, API calls must be the gateway's
        (`gateway_only`: every service but the gateway itself, hvc.common.calls)."""
        runtime = self

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        # A production profile publishes no API documents (/docs, /redoc, /openapi.json): the
        # contract is README's and the schema test's, not an attacker's map.
        public = self.hvc.profile is not Profile.PRODUCTION
        api = FastAPI(
            title=title or f"hvc {self.name}",
            version="1",
            lifespan=lifespan,
            docs_url="/docs" if public else None,
            redoc_url="/redoc" if public else None,
            openapi_url="/openapi.json" if public else None,
            # No redirects (a trailing slash was answered 307 to a Location built from the
            # Host header the caller sent): a path is served as it is, or is 404.
            redirect_slashes=False,
        )
        problems.install(api)
        api.include_router(health_router(self.readiness, metrics=self.hvc.metrics_port is None))
        for r in routers:
            api.include_router(r)
        if self.hvc.service_key is not None and gateway_only:
            from hvc.common.calls import GatewayOnly

            api.add_middleware(GatewayOnly, key=self.hvc.service_key.get_secret_value().encode())
        return api

    def serve(self, api: FastAPI) -> None:
        import uvicorn

        configure_logging(self.name, self.hvc.log_level)
        self._settle_heap = True
        uvicorn.run(
            api,
            host=self.hvc.http_host,
            port=self.hvc.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )


def service_main(
    name: str, bootstrap: Callable[[], tuple[ServiceRuntime, FastAPI]], argv: list[str] | None
) -> int:
    """`python -m hvc.<name>` of a service on the engine: `serve` (the default) or
    `rebuild-views`."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m hvc.{name}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the stream service and its HTTP side (default)")
    rebuild = sub.add_parser("rebuild-views", help="write the views again from the topics")
    rebuild.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    runtime, api = bootstrap()
    if args.command == "rebuild-views":
        return rebuild_views_command(runtime, args.idle_seconds)
    runtime.serve(api)
    return 0


def rebuild_views_command(runtime: ServiceRuntime, idle_s: float) -> int:
    """`python -m hvc.<service> rebuild-views`: run the rebuild, print what it did (JSON);
    exit status 2 when it is refused (the service is running)."""
    import json
    import sys

    configure_logging(runtime.name, runtime.hvc.log_level, sys.stderr)
    try:
        stats = asyncio.run(runtime.rebuild_views(idle_s))
    except RuntimeError as exc:
        log.error("rebuild-views refused: %s", exc)
        return 2
    sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    return 0


def _commit_offsets(
    kafka: KafkaSettings, group: str, offsets: Mapping[tuple[str, int], int]
) -> None:
    """Commit `offsets` for an empty consumer group, where its members will start."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            **kafka.librdkafka(),
        }
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, off) for (t, p), off in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


def _group_members(admin: Any, group: str) -> int:
    """How many members a consumer group has now (0 for a group that does not exist)."""
    from confluent_kafka import KafkaException

    try:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=15)
    except KafkaException as exc:
        if "GROUP_ID_NOT_FOUND" in str(exc):
            return 0
        raise
    return len(desc.members)


def _delete_group(admin: Any, group: str) -> None:
    from confluent_kafka import KafkaException

    try:
        admin.delete_consumer_groups([group])[group].result(timeout=15)
    except KafkaException as exc:
        if "GROUP_ID_NOT_FOUND" in str(exc):
            return
        log.warning("could not delete consumer group", extra={"group": group, "error": str(exc)})
