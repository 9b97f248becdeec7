"""Builds the gateway: token verifier, rate limiter, upstream clients, audit, HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from hvc.common.service import ServiceRuntime
from hvc.common.settings import HvcSettings, KafkaSettings, MongoSettings, Profile
from hvc.gateway import workbench
from hvc.gateway.api.deps import Gateway
from hvc.gateway.api.routes import make_router
from hvc.gateway.audit import Audit
from hvc.gateway.auth import Verifier
from hvc.gateway.idempotency import Keys
from hvc.gateway.limits import RateLimiter, SharedWindows
from hvc.gateway.middleware import RequestIdAndLimits
from hvc.gateway.reports import ReportCache
from hvc.gateway.settings import GatewaySettings
from hvc.gateway.upstream import Upstreams


def bootstrap(
    *,
    name: str = "gateway",
    hvc: HvcSettings | None = None,
    kafka: KafkaSettings | None = None,
    mongo: MongoSettings | None = None,
    settings: GatewaySettings | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    hvc = hvc or HvcSettings()
    settings = settings or GatewaySettings()
    settings.check(production=hvc.profile is Profile.PRODUCTION)
    runtime = ServiceRuntime(name, hvc=hvc, kafka=kafka, mongo=mongo)
    up = Upstreams(settings, hvc.service_key.get_secret_value() if hvc.service_key else None)
    runtime.on_stop(up.close)
    audit = Audit(runtime.db)
    runtime.on_start(audit.ensure_indexes)
    api = runtime.http_app(
        make_router(),
        title="hvc API",
        gateway_only=False,  # the one entry from outside: its callers' tokens are its check
    )
    workbench.install(api, settings)
    api.state.gateway = Gateway(
        up=up,
        audit=audit,
        send=runtime.send,
        keys=Keys(runtime.db),
        reports=ReportCache(settings.report_cache_seconds, settings.report_concurrency),
        full_contact_roles=settings.full_contact_roles,
        priority_queues=settings.priority_queues,
        default_queue=settings.default_queue,
    )
    api.state.audit = audit  # the router's route class records every call (api.audited)
    api.state.verifier = Verifier(settings)
    api.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    shared = SharedWindows(runtime.db, settings.rate_limit_per_minute)
    runtime.every(1.0, "rate-windows", shared.sync)
    api.state.shared_limit = shared
    # Failed authentications per client address, counted before any token is read.
    api.state.failures = RateLimiter(settings.failed_auth_per_minute)
    api.add_middleware(
        RequestIdAndLimits,
        max_body_bytes=settings.max_body_bytes,
        hsts=hvc.profile is Profile.PRODUCTION,  # served over TLS there (the ingress)
    )

    api.state.upstreams = up
    return runtime, api
