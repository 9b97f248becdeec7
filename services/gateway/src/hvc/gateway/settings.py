"""Settings of the gateway (env prefix HVC_GATEWAY_)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HVC_GATEWAY_", extra="ignore")

    # Tokens: RS256 against the identity provider's JWKS in production; an HS256 development
    # key only with dev_mode on, which a production profile refuses (see check()).
    dev_mode: bool = False
    dev_key: SecretStr = SecretStr("hvc-development-key-not-for-production-use-0001")
    jwks_url: str | None = None
    jwks_file: str | None = None  # a JWKS document on disk (tests, air-gapped installs)
    issuer: str = "hvc"
    audience: str = "hvc-api"
    # The JWKS is fetched at most this often, whatever key ids tokens name.
    jwks_min_refresh_s: float = Field(default=60.0, ge=1)
    # The longest a token may live (exp - iat), and the largest token read at all.
    max_token_lifetime_s: int = Field(default=24 * 3600, ge=60)
    max_token_bytes: int = Field(default=8192, ge=512)
    # The services the gateway composes.
    tiering_url: str = "http://127.0.0.1:8080"
    warnings_url: str = "http://127.0.0.1:8081"
    benefits_url: str = "http://127.0.0.1:8082"
    complaints_url: str = "http://127.0.0.1:8083"
    upstream_timeout_s: float = Field(default=5.0, gt=0)
    # Requests per minute per caller, and the largest request body accepted.
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Failed authentications per client address and minute; past it, 429 before a token is
    # read (the address is the peer's: uvicorn's --forwarded-allow-ips behind an ingress).
    failed_auth_per_minute: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Reports (full scans in their services): one fetch per report and parameters per this
    # many seconds, shared by its callers; at most this many fetched at once.
    report_cache_seconds: float = Field(default=60.0, ge=0)
    report_concurrency: int = Field(default=2, ge=1)
    # Where the workbench sends its users to sign in: the identity provider's OAuth 2
    # authorize URL (client, scope and redirect included), which returns the access token in
    # the URL fragment (#access_token=...). Unset: development sign-in (dev_mode) only.
    workbench_login_url: str | None = None
    # The VIP line's priority queue by tier (优先接入, DOMAIN §6); any other tier, and a
    # caller who is nobody's customer, gets `default_queue`.
    priority_queues: dict[str, str] = {
        "DIAMOND": "P1",
        "PLATINUM": "P1",
        "GOLD": "P2",
        "SILVER": "P2",
        "VIP": "P3",
    }
    default_queue: str = "P4"
    # Roles shown a customer's full name and numbers (they call the customer); others masked.
    full_contact_roles: tuple[str, ...] = ("agent", "manager")

    @model_validator(mode="after")
    def _keys(self) -> GatewaySettings:
        if not self.dev_mode and not (self.jwks_url or self.jwks_file):
            raise ValueError("without dev_mode, HVC_GATEWAY_JWKS_URL or _JWKS_FILE is required")
        return self

    def check(self, production: bool) -> None:
        if production and self.dev_mode:
            raise ValueError("HVC_GATEWAY_DEV_MODE is refused with HVC_PROFILE=production")
