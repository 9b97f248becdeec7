"""pydantic-settings classes, one per concern; nothing else in hvc reads os.environ."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Profile(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class HvcSettings(BaseSettings):
    """Process-wide settings (env prefix HVC_)."""

    model_config = SettingsConfigDict(env_prefix="HVC_", extra="ignore")

    profile: Profile = Profile.DEVELOPMENT
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    # The stream engine keeps its local state here; a writable emptyDir in Kubernetes.
    data_dir: str = "/tmp/hvc"  # noqa: S108 - container scratch, not a secret
    # The key the gateway signs its calls to the services with, which they check
    # (hvc.common.calls); required in production. Unset (tests): no check.
    service_key: SecretStr | None = None
    # Prometheus metrics on a port of their own (the NetworkPolicy admits only that one to
    # the monitoring namespace); unset: /metrics on the service's HTTP port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Whole-collection reads (reports, dry runs) at once per process, and how long a request
    # waits for a turn before it is answered 503 (hvc.common.scans).
    scan_concurrency: int = Field(default=2, ge=1, le=64)
    scan_queue_seconds: float = Field(default=15.0, ge=0.0, le=600.0)
    # The stream engine's memory (hvc.common.streams.EngineSettings): records read ahead by
    # the pipeline in all (shared by its input partitions; or a number per partition),
    # librdkafka's read-ahead in all, RocksDB's memtable per state partition and its block
    # cache for the process.
    stream_buffer_records: int = Field(default=40_000, ge=1_000, le=10_000_000)
    stream_buffer_per_partition: int | None = Field(default=None, ge=10, le=100_000)
    stream_fetch_queue_kib: int = Field(default=8192, ge=256, le=1 << 20)
    stream_fetch_min_bytes: int = Field(default=1, ge=1, le=1 << 24)
    stream_write_buffer_mib: int = Field(default=4, ge=1, le=256)
    stream_block_cache_mib: int = Field(default=16, ge=1, le=8192)
    # States, views and outputs a checkpoint holds before it is committed after the record in
    # hand instead of at its interval (hvc.common.streams.EngineSettings); 0: interval only.
    stream_checkpoint_max_writes: int = Field(default=5_000, ge=0, le=10_000_000)


class KafkaSettings(BaseSettings):
    """How to reach the broker (env prefix KAFKA_)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    # How long a consumer that stopped heartbeating keeps its partitions (a crashed process:
    # nobody reads them meanwhile). librdkafka's default is 45 s; aiokafka's, 10 s.
    session_timeout_s: float = Field(default=15.0, ge=6.0, le=300.0)
    # How long the stream engine's consumer waits for a batch (EngineSettings.poll_timeout_s):
    # on a stream that is not saturated, up to this long per hop.
    poll_timeout_s: float = Field(default=0.05, gt=0.0, le=10.0)

    @property
    def heartbeat_interval_s(self) -> float:
        """A third of the session at most (Kafka's rule), 3 s at most (the clients' default)."""
        return min(3.0, self.session_timeout_s / 3)

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError("SASL needs KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD")
        return self

    def librdkafka(self) -> dict[str, Any]:
        """The same connection for librdkafka's clients (the stream engine's)."""
        cfg: dict[str, Any] = {"security.protocol": self.security_protocol.lower()}
        if self.ssl_cafile:
            cfg["ssl.ca.location"] = self.ssl_cafile
        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None
            cfg["sasl.mechanism"] = self.sasl_mechanism
            cfg["sasl.username"] = self.sasl_username
            cfg["sasl.password"] = self.sasl_password.get_secret_value()
        return cfg

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kw: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kw


class MongoSettings(BaseSettings):
    """How to reach the store (env prefix MONGO_)."""

    model_config = SettingsConfigDict(env_prefix="MONGO_", extra="ignore")

    uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    # Each service owns one database; unset means hvc_<service>.
    database: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    server_selection_timeout_ms: int = 5000


def check_production(hvc: HvcSettings, kafka: KafkaSettings, mongo: MongoSettings) -> None:
    """Refuse plaintext connections outside development."""
    if hvc.profile is not Profile.PRODUCTION:
        return
    problems = []
    if kafka.security_protocol != "SASL_SSL":
        problems.append("KAFKA_SECURITY_PROTOCOL must be SASL_SSL in production")
    uri = mongo.uri.get_secret_value()
    if not (mongo.tls or "tls=true" in uri or "ssl=true" in uri or uri.startswith("mongodb+srv")):
        problems.append("MongoDB must use TLS in production (MONGO_TLS=true)")
    if "@" not in uri:
        problems.append("MongoDB must authenticate in production (credentials in MONGO_URI)")
    if hvc.service_key is None or len(hvc.service_key.get_secret_value()) < 32:
        problems.append("HVC_SERVICE_KEY (32 characters or more) is required in production")
    if problems:
        raise ValueError("; ".join(problems))
