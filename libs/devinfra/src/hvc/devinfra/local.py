"""Local infrastructure without Docker: Kafka (KRaft) from Maven Central, FerretDB built from Go.

Everything lives under `.local/` in the project: downloads and builds are shared, and each
*instance* (`run` for `make run`, `test` for the test suite) has its own ports, data, logs and
pid files, so the suite can run while the demo platform is up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hvc.devinfra.ferretdb_patches import FERRETDB_PATCHES

log = logging.getLogger("hvc.devinfra")

KAFKA_VERSION: Final = "3.9.1"
FERRETDB_MODULE: Final = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION: Final = "v1.24.2"
# A change to any patch is a new build (a binary of older patches is not reused).
FERRETDB_BUILD: Final = (
    f"{FERRETDB_VERSION}-hvc{len(FERRETDB_PATCHES)}-"
    + hashlib.sha256(repr(FERRETDB_PATCHES).encode()).hexdigest()[:8]
)
RESOURCES: Final = Path(__file__).parent / "resources"
SERVICES: Final = ("tiering", "warnings", "benefits", "complaints", "gateway")
PROCESSES: Final = ("simulator", *SERVICES, "ferretdb", "kafka")  # stopped in this order

# Default ports per instance: the demo uses the usual ones, the suite keeps clear of them.
DEFAULT_PORTS: Final = {
    "run": {"kafka": 9092, "mongo": 27017, "http": 8080},
    "test": {"kafka": 19092, "mongo": 27117, "http": 18080},
    "bench": {"kafka": 29092, "mongo": 27217, "http": 28080},
}


def attached(name: str, http_base_port: int) -> Instance:
    """An instance of services only, with its own HTTP ports and log and pid folders, for the
    tests that start services against whatever broker and store the suite has."""
    return Instance(
        name=name, root=project_root(), kafka_port=0, mongo_port=0, http_base_port=http_base_port
    )


def project_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "uv.lock").exists() and (parent / "Makefile").exists():
            return parent
    raise RuntimeError(f"cannot find the project root above {here}")


class InfraError(RuntimeError):
    pass


@dataclass(frozen=True)
class Instance:
    name: str
    root: Path
    kafka_port: int
    mongo_port: int
    http_base_port: int

    @classmethod
    def named(cls, name: str, root: Path | None = None) -> Instance:
        root = root or project_root()
        ports = DEFAULT_PORTS.get(name, DEFAULT_PORTS["test"])
        env = os.environ
        return cls(
            name=name,
            root=root,
            kafka_port=int(env.get("HVC_LOCAL_KAFKA_PORT", ports["kafka"])),
            mongo_port=int(env.get("HVC_LOCAL_MONGO_PORT", ports["mongo"])),
            http_base_port=int(env.get("HVC_LOCAL_HTTP_PORT", ports["http"])),
        )

    # Shared downloads and builds.
    @property
    def local(self) -> Path:
        return self.root / ".local"

    @property
    def kafka_libs(self) -> Path:
        return self.local / "kafka" / KAFKA_VERSION / "libs"

    @property
    def ferretdb_bin(self) -> Path:
        return self.local / "ferretdb" / FERRETDB_BUILD / "ferretdb"

    # Per-instance state.
    @property
    def home(self) -> Path:
        return self.local / self.name

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pids(self) -> Path:
        return self.home / "pids"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    @property
    def ferretdb_debug_port(self) -> int:
        """FerretDB's debug listener (metrics, goroutine dumps): the store's port + 1."""
        return self.mongo_port + 1

    def http_port(self, service: str) -> int:
        return self.http_base_port + SERVICES.index(service)


# -- fetch and build ---------------------------------------------------------------------


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    log.info("$ %s", " ".join(cmd))
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    if proc.returncode != 0:
        raise InfraError(
            f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def fetch_kafka(inst: Instance) -> Path:
    """Resolve the broker's runtime classpath from Maven Central (once)."""
    marker = inst.kafka_libs / ".complete"
    if marker.exists():
        return inst.kafka_libs
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise InfraError("Maven and a JDK 17 are needed to fetch Kafka (apt-get install maven)")
    tmp = inst.kafka_libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.monotonic()
    _run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(RESOURCES / "pom.xml"),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
    )
    if not any(tmp.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise InfraError(f"Maven resolved no kafka_2.13-{KAFKA_VERSION}.jar into {tmp}")
    shutil.rmtree(inst.kafka_libs, ignore_errors=True)
    tmp.rename(inst.kafka_libs)
    marker.write_text(KAFKA_VERSION)
    log.info("fetched Kafka %s in %.1fs", KAFKA_VERSION, time.monotonic() - t0)
    return inst.kafka_libs


def build_ferretdb(inst: Instance) -> Path:
    """Build FerretDB from the Go module proxy (once).

    A plain `go install` panics at start-up: build/version requires a generated
    version.txt that the module zip lacks (INFRA-NOTES.md). So: copy the module source
    out of the module cache, write version.txt, apply FERRETDB_PATCHES, build.
    """
    if inst.ferretdb_bin.exists():
        return inst.ferretdb_bin
    if shutil.which("go") is None:
        raise InfraError("Go >= 1.24 is needed to build FerretDB")
    t0 = time.monotonic()
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    info = json.loads(
        _run(["go", "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"], env=env)
    )
    if "Dir" not in info:
        raise InfraError(f"go mod download gave no source directory: {info}")
    src = inst.ferretdb_bin.parent / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(info["Dir"], src)
    for path in [src, *src.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
    patch_ferretdb(src)
    out = inst.ferretdb_bin.with_suffix(".partial")
    _run(["go", "build", "-trimpath", "-o", str(out), "./cmd/ferretdb"], cwd=src, env=env)
    out.rename(inst.ferretdb_bin)
    shutil.rmtree(src, ignore_errors=True)
    log.info("built FerretDB %s in %.1fs", FERRETDB_VERSION, time.monotonic() - t0)
    return inst.ferretdb_bin


def patch_ferretdb(src: Path) -> None:
    for rel, old, new, why in FERRETDB_PATCHES:
        path = src / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise InfraError(f"FerretDB patch '{why}' does not apply to {rel}")
        path.write_text(text.replace(old, new))
        log.info("patched FerretDB: %s", why)


def fetch(inst: Instance) -> None:
    fetch_kafka(inst)
    build_ferretdb(inst)


# -- processes ---------------------------------------------------------------------------


def _pid_file(inst: Instance, name: str) -> Path:
    return inst.pids / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is not alive.
    with contextlib.suppress(FileNotFoundError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running_pid(inst: Instance, name: str) -> int | None:
    """The pid recorded for `name`, if that process still runs what we started."""
    f = _pid_file(inst, name)
    if not f.exists():
        return None
    rec = json.loads(f.read_text())
    pid, marker = int(rec["pid"]), rec["marker"]
    if _alive(pid) and marker in _cmdline(pid):
        return pid
    f.unlink(missing_ok=True)
    return None


def _spawn(
    inst: Instance, name: str, cmd: list[str], marker: str, env: dict[str, str] | None = None
) -> int:
    inst.logs.mkdir(parents=True, exist_ok=True)
    inst.pids.mkdir(parents=True, exist_ok=True)
    logf = open(inst.logs / f"{name}.log", "ab")
    proc = subprocess.Popen(
        cmd,
        stdout=logf,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=inst.root,
        env=env,
        start_new_session=True,  # not killed with the terminal; `make down` stops it
    )
    logf.close()
    # Until the child has exec'd, its cmdline is still ours (the forked Python), and
    # running_pid() would take it for a stranger.
    deadline = time.monotonic() + 10
    while marker not in _cmdline(proc.pid) and proc.poll() is None:
        if time.monotonic() > deadline:
            raise InfraError(f"{name} (pid {proc.pid}) did not start {cmd[0]}")
        time.sleep(0.01)
    _pid_file(inst, name).write_text(json.dumps({"pid": proc.pid, "marker": marker}))
    return proc.pid


def stop(inst: Instance, name: str, timeout_s: float = 20.0) -> bool:
    pid = running_pid(inst, name)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    _pid_file(inst, name).unlink(missing_ok=True)
    log.info("stopped %s (pid %d)", name, pid)
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(
    what: str,
    ok: Callable[[], bool],
    timeout_s: float,
    inst: Instance,
    name: str,
    why: Callable[[], str] = lambda: "",
) -> None:
    """Poll `ok` until it holds; on time-out the error carries `why()` (the last answer) and
    the end of the process's log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        if running_pid(inst, name) is None:
            raise InfraError(f"{what} exited during start-up; end of its log:\n{_tail(inst, name)}")
        time.sleep(0.25)
    raise InfraError(
        f"{what} did not answer within {timeout_s:.0f}s {why()}(log: {inst.logs}); "
        f"end of its log:\n{_tail(inst, name)}"
    )


def _tail(inst: Instance, name: str) -> str:
    log_file = inst.logs / f"{name}.log"
    return log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""


def start_kafka(inst: Instance) -> None:
    if running_pid(inst, "kafka") is not None:
        return
    if _port_open(inst.kafka_port):
        raise InfraError(f"port {inst.kafka_port} is taken by a process we did not start")
    libs = fetch_kafka(inst)
    home = inst.home / "kafka"
    data = home / "data"
    conf = home / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    shutil.copy(RESOURCES / "log4j.properties", conf / "log4j.properties")
    ctl = inst.kafka_port + 1
    props = conf / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{ctl}",
                f"listeners=PLAINTEXT://127.0.0.1:{inst.kafka_port},CONTROLLER://127.0.0.1:{ctl}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{inst.kafka_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=3",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=12",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "message.max.bytes=11534336",
                "log.retention.check.interval.ms=60000",
                "",
            ]
        )
    )
    classpath = f"{conf}:{libs}/*"
    java = [
        "java",
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
        "-cp",
        classpath,
    ]
    if not (data / "meta.properties").exists():
        cluster_id = _kafka_cluster_id()
        # The `=` form: an id that began with "-" would otherwise be read as an option.
        fmt = ["format", f"--cluster-id={cluster_id}", "--config", str(props)]
        _run([*java, "kafka.tools.StorageTool", *fmt])
    _spawn(inst, "kafka", [*java, "kafka.Kafka", str(props)], marker=str(props))
    _wait("Kafka", lambda: _port_open(inst.kafka_port), 90, inst, "kafka")
    log.info("Kafka %s listening on %s", KAFKA_VERSION, inst.kafka_bootstrap)


def _kafka_cluster_id() -> str:
    """A random cluster id in Kafka's form: 22 characters of URL-safe base64.

    Like Kafka's own `Uuid.randomUuid`, it never begins with "-" (one id in 64
    would), which command-line parsers take for an option.
    """
    import base64

    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def start_ferretdb(inst: Instance, cursor_idle_s: float | None = None) -> None:
    if running_pid(inst, "ferretdb") is not None:
        return
    if _port_open(inst.mongo_port):
        raise InfraError(f"port {inst.mongo_port} is taken by a process we did not start")
    binary = build_ferretdb(inst)
    home = inst.home / "ferretdb"
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(binary),
        "--handler=sqlite",
        # WAL (FerretDB's default) with `synchronous=NORMAL`: a commit is durable against a
        # crash of any process (kill -9 of the store included) and syncs at checkpoints only,
        # not at every commit; a power cut may lose the last commits. Local store only
        # (production is MongoDB with its own journal).
        f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
        f"--state-dir={home}",
        f"--listen-addr=127.0.0.1:{inst.mongo_port}",
        f"--debug-addr=127.0.0.1:{inst.ferretdb_debug_port}",
        "--telemetry=disable",
        "--log-level=warn",
    ]
    idle = cursor_idle_s or cursor_idle_seconds()
    env = {**os.environ, "HVC_FERRETDB_CURSOR_IDLE_SECONDS": str(idle)}
    _spawn(inst, "ferretdb", cmd, marker=f"--state-dir={home}", env=env)
    _wait("FerretDB", lambda: _port_open(inst.mongo_port), 60, inst, "ferretdb")
    log.info("FerretDB %s listening on %s", FERRETDB_VERSION, inst.mongo_uri)


def cursor_idle_seconds() -> float:
    """How long the local store keeps a cursor nobody reads (this project's FerretDB patch;
    MongoDB's own `cursorTimeoutMillis` is 10 minutes): a backstop, since every read here
    closes its cursor (`hvc.common.mongo.all_of`)."""
    return float(os.environ.get("HVC_LOCAL_CURSOR_IDLE_SECONDS", "600"))


def _debug_get(inst: Instance, path: str, timeout_s: float = 5.0) -> str:
    import urllib.request

    url = f"http://127.0.0.1:{inst.ferretdb_debug_port}{path}"
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return str(r.read().decode(errors="replace"))


def open_cursors(inst: Instance) -> dict[str, int]:
    """The store's open cursors by `db.collection`: created less closed, from FerretDB's own
    metrics (`ferretdb_cursors_created_total`, `ferretdb_cursors_duration_seconds_count`)."""
    import re

    created: dict[tuple[str, str], float] = {}
    closed: dict[tuple[str, str], float] = {}
    line_re = re.compile(r"ferretdb_cursors_(created_total|duration_seconds_count)\{(.*)\} (\S+)")
    for line in _debug_get(inst, "/debug/metrics").splitlines():
        m = line_re.match(line)
        if m is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = (labels.get("db", ""), labels.get("collection", ""))
        into = created if m.group(1) == "created_total" else closed
        into[key] = into.get(key, 0.0) + float(m.group(3))
    out = {
        f"{db}.{coll}": int(n - closed.get((db, coll), 0.0)) for (db, coll), n in created.items()
    }
    return {k: n for k, n in sorted(out.items()) if n}


def store_answers(inst: Instance, timeout_s: float = 5.0) -> tuple[bool, str]:
    """Whether the store answers `ping` and lists a database's collections within
    `timeout_s` (a hung FerretDB accepts connections and then answers nothing)."""
    from pymongo import MongoClient

    ms = int(timeout_s * 1000)
    client: MongoClient[Any] = MongoClient(
        inst.mongo_uri, serverSelectionTimeoutMS=ms, socketTimeoutMS=ms, connectTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
        client["hvc_tiering"].list_collection_names()
        return True, "ok"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        client.close()


def heal_store(inst: Instance, timeout_s: float = 5.0) -> str:
    """Restart the local store if it runs but does not answer: its goroutines are saved to
    the logs first (the evidence of the hang), then it is stopped and started again. The
    services' clients reconnect by themselves. Returns what was done."""
    if running_pid(inst, "ferretdb") is None:
        return "the store is not running (make run starts it)"
    ok, why = store_answers(inst, timeout_s)
    if ok:
        return "the store answers; nothing to do"
    dump = inst.logs / f"ferretdb-goroutines-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    with contextlib.suppress(OSError):
        dump.write_text(_debug_get(inst, "/debug/pprof/goroutine?debug=2", timeout_s))
    stop(inst, "ferretdb", timeout_s=10)
    start_ferretdb(inst)
    return f"the store did not answer ({why}); restarted it, goroutines in {dump}"


def create_topics(inst: Instance) -> list[str]:
    import asyncio

    from hvc.common.topics import ensure_topics

    return asyncio.run(ensure_topics(inst.kafka_bootstrap, replicas=1))


def up(inst: Instance) -> None:
    """Start broker and store (reusing running ones) and create the registry's topics."""
    start_kafka(inst)
    start_ferretdb(inst)
    created = create_topics(inst)
    if created:
        log.info("created %d topics from the registry", len(created))


def service_key(inst: Instance) -> str:
    """The instance's key for calls from its gateway to its services (hvc.common.calls), made
    once and kept beside its state, readable by its owner only."""
    path = inst.home / "service.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def service_env(inst: Instance, service: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGO_", "HVC_"))}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": inst.kafka_bootstrap,
            "MONGO_URI": inst.mongo_uri,
            "HVC_PROFILE": "development",
            "HVC_HTTP_HOST": "127.0.0.1",
            "HVC_HTTP_PORT": str(inst.http_port(service)),
            "HVC_DATA_DIR": str(inst.home / "state"),
            # The gateway signs its calls and the services check them, here as in production.
            "HVC_SERVICE_KEY": service_key(inst),
        }
    )
    if service == "gateway":
        # Local only: development tokens (python -m hvc.gateway token ...) and the local
        # services' ports. A production profile refuses dev mode.
        env["HVC_GATEWAY_DEV_MODE"] = "true"
        env["HVC_GATEWAY_UPSTREAM_TIMEOUT_S"] = "20"  # the local store is slow under the demo
        for upstream in ("tiering", "warnings", "benefits", "complaints"):
            url = f"http://127.0.0.1:{inst.http_port(upstream)}"
            env[f"HVC_GATEWAY_{upstream.upper()}_URL"] = url
    return env


def start_service(
    inst: Instance, service: str, *, env_overrides: dict[str, str] | None = None
) -> None:
    if running_pid(inst, service) is not None:
        return
    port = inst.http_port(service)
    if _port_open(port):
        raise InfraError(f"port {port} for {service} is taken by a process we did not start")
    env = {**service_env(inst, service), **(env_overrides or {})}
    cmd = [sys.executable, "-m", f"hvc.{service}"]
    _spawn(inst, service, cmd, marker=f"hvc.{service}", env=env)


def readiness(inst: Instance, service: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    """Whether the service's /readyz answers 200 (refused, timed out or 503: not ready), and
    its body (which check fails) or why there is none."""
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{inst.http_port(service)}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status == 200, str(r.read(2000).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return False, str(exc.read(2000).decode(errors="replace"))
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}"


def is_ready(inst: Instance, service: str, timeout_s: float = 3.0) -> bool:
    return readiness(inst, service, timeout_s)[0]


def wait_ready(inst: Instance, service: str, timeout_s: float = 120.0) -> None:
    last = ""

    def ready() -> bool:
        nonlocal last
        ok, last = readiness(inst, service)
        return ok

    _wait(
        f"{service} /readyz",
        ready,
        timeout_s,
        inst,
        service,
        why=lambda: f"(last answer: {last}) ",
    )


def services_up(inst: Instance) -> None:
    up(inst)
    for s in SERVICES:
        start_service(inst, s)
    for s in SERVICES:
        wait_ready(inst, s)
        log.info("%s ready on http://127.0.0.1:%d", s, inst.http_port(s))
    start_feed(inst, Feed.from_env())


@dataclass(frozen=True)
class Feed:
    customers: int
    days: int
    days_per_second: float
    seed: int = 42
    events_per_second: float = 0.0  # a fixed offered load instead of the pace in days
    seconds: float = 0.0  # with events_per_second: stop after this

    @classmethod
    def from_env(cls) -> Feed:
        env = os.environ
        return cls(
            customers=int(env.get("HVC_DEMO_CUSTOMERS", "2000")),
            days=int(env.get("HVC_DEMO_DAYS", "400")),
            days_per_second=float(env.get("HVC_DEMO_DAYS_PER_SECOND", "4")),
            seed=int(env.get("HVC_DEMO_SEED", "42")),
        )

    def args(self) -> list[str]:
        return [
            "--customers",
            str(self.customers),
            "--days",
            str(self.days),
            "--days-per-second",
            str(self.days_per_second),
            "--seed",
            str(self.seed),
            "--events-per-second",
            str(self.events_per_second),
            "--seconds",
            str(self.seconds),
        ]


def start_feed(inst: Instance, feed: Feed, bootstrap: str | None = None) -> int | None:
    """The synthetic operator, publishing like an upstream system (stopped by `make down`)."""
    if running_pid(inst, "simulator") is not None:
        return None
    kafka = bootstrap or inst.kafka_bootstrap
    cmd = [sys.executable, "-m", "hvc.simulator", "--bootstrap", kafka, *feed.args()]
    return _spawn(inst, "simulator", cmd, marker="hvc.simulator")


def wait_feed(inst: Instance, timeout_s: float) -> None:
    """Until the simulator started by `start_feed` has played its feed and exited."""
    deadline = time.monotonic() + timeout_s
    while running_pid(inst, "simulator") is not None:
        if time.monotonic() > deadline:
            raise InfraError(f"the feed did not finish within {timeout_s:.0f}s")
        time.sleep(0.5)


def kill(inst: Instance, name: str) -> bool:
    """`kill -9`: no shutdown hooks, no final flush or commit (the fault tests' crash)."""
    pid = running_pid(inst, name)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(pid):
        if time.monotonic() > deadline:
            raise InfraError(f"{name} (pid {pid}) outlived kill -9")
        time.sleep(0.01)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    _pid_file(inst, name).unlink(missing_ok=True)
    if name in SERVICES:  # its port is free once the kernel has closed its sockets
        port = inst.http_port(name)
        while _port_open(port):
            if time.monotonic() > deadline:
                raise InfraError(f"port {port} of the killed {name} stays taken")
            time.sleep(0.05)
    log.info("killed %s (pid %d)", name, pid)
    return True


def down(inst: Instance) -> list[str]:
    return [s for s in PROCESSES if stop(inst, s)]


def status(inst: Instance) -> dict[str, int | None]:
    return {s: running_pid(inst, s) for s in PROCESSES}
