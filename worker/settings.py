"""meetreg's configuration: one object, read once from the environment (and `.env`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from worker.errors import ConfigError
from worker.redis.target import RedisTarget, parse_redis_url
from worker.registrants import DEFAULT_LANGUAGE, Defaults
from worker.registrants import DEFAULT_TIMEZONE as DEFAULT_WEBINAR_TIMEZONE
from worker.schedule import Cron, parse_cron

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/beta"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# 5,000 requests per 10 s per app is the published cloud-communications ceiling across
# all tenants; a tenth of it leaves room for other apps and for the adaptive limiter.
DEFAULT_RATE_LIMIT_PER_S = 50.0
# Celery threads per worker process, and $batch requests in flight: with $batch each
# thread takes DEFAULT_CHUNK_SIZE rows through the protocol together (worker.protocol.wave).
# Measured (bench/, no limit, 12,000 rows): 32 threads x 10 rows ~390 rows/s, 64 x 10
# ~540, 32 x 20 ~750 (one full envelope per step), 64 x 20 ~730.
DEFAULT_CONCURRENCY = 32
DEFAULT_RECOVERY_S = 120.0
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_IDEMPOTENCY_RETENTION_DAYS = 365.0
DEFAULT_REQUEST_TIMEOUT_S = 30.0
DEFAULT_CHUNK_SIZE = 20  # Graph's $batch limit: one envelope per lock-step step
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_ENVELOPE_SIZE = 20  # Graph calls per `$batch` request: Graph's limit
DEFAULT_INTAKE_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_NIGHTLY_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
# A beat that dies holding the leader's lock is replaced within this time (plus one tick
# of the standby's, BEAT_TICK_S); the leader renews the lock every tick.
DEFAULT_BEAT_LOCK_TIMEOUT_S = 30.0
BEAT_TICK_S = 5.0
TOKEN_CACHE_NAME = "token-cache.json"  # noqa: S105 - a file name
# Each worker process serves /metrics here (Prometheus); 0 turns it off.
DEFAULT_METRICS_PORT = 9808
# Every interface: Prometheus scrapes workers from elsewhere (another pod, another host),
# and the metrics hold no secret. 127.0.0.1 keeps them on the machine.
DEFAULT_METRICS_HOST = "0.0.0.0"  # noqa: S104
# `meetreg serve` against slow or many clients: connections at once (past it, 503 at once),
# how long a kept-alive connection may idle, and how long a request's headers, then its
# body, may take to arrive (past either, 408 and the connection closed).
DEFAULT_SERVE_MAX_CONNECTIONS = 500  # under the usual 1,024 open files
DEFAULT_SERVE_KEEP_ALIVE_S = 5  # uvicorn's own default
DEFAULT_SERVE_HEADER_TIMEOUT_S = 10.0
DEFAULT_SERVE_BODY_TIMEOUT_S = 30.0  # a 5 MiB intake at ~170 kB/s
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

RENAMED = {
    # A "batch" is a set of rows with one batch id; Graph's `$batch` request is an envelope.
    "MEETREG_BATCH_SIZE": "MEETREG_ENVELOPE_SIZE",
}
"""Environment names meetreg no longer uses -> the names that replaced them. An old name
still works, from the environment or `.env`, with one warning per process; when the new
name is set too, anywhere, the new one wins."""

log = logging.getLogger(__name__)
_warned: set[str] = set()  # the old names warned about in this process


class AuthMode(StrEnum):
    """How meetreg gets its Graph tokens (MEETREG_AUTH)."""

    SECRET = "secret"  # noqa: S105 - app-only: AZURE_CLIENT_SECRET
    CERTIFICATE = "certificate"  # app-only: AZURE_CLIENT_CERTIFICATE_PATH (+ password)
    MANAGED_IDENTITY = "managed-identity"  # app-only: the Azure host's identity
    DELEGATED = "delegated"  # the organizer who ran `meetreg login`, through /me

    @property
    def app_only(self) -> bool:
        return self is not AuthMode.DELEGATED


def default_token_cache() -> Path:
    """Where `meetreg login` keeps the delegated token cache: the user's config folder."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "meetreg" / TOKEN_CACHE_NAME


class Settings(BaseSettings):
    """Every setting meetreg reads; names in docs/configuration.md, secrets as `SecretStr`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Before REDIS_URL: its validator reads it (a sentinel:// URL needs the master's name).
    redis_sentinel_master: str | None = Field(
        None, validation_alias="MEETREG_REDIS_SENTINEL_MASTER"
    )
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    graph_base_url: str = Field(DEFAULT_GRAPH_BASE_URL, validation_alias="GRAPH_BASE_URL")
    tenant_id: str | None = Field(None, validation_alias="AZURE_TENANT_ID")
    client_id: str | None = Field(None, validation_alias="AZURE_CLIENT_ID")
    client_secret: SecretStr | None = Field(None, validation_alias="AZURE_CLIENT_SECRET")
    client_certificate_path: Path | None = Field(
        None, validation_alias="AZURE_CLIENT_CERTIFICATE_PATH"
    )
    client_certificate_password: SecretStr | None = Field(
        None, validation_alias="AZURE_CLIENT_CERTIFICATE_PASSWORD"
    )
    authority_host: str = Field(DEFAULT_AUTHORITY_HOST, validation_alias="AZURE_AUTHORITY_HOST")
    # Unset: `secret` or `certificate`, whichever credential is set (the secret wins).
    auth: AuthMode | None = Field(None, validation_alias="MEETREG_AUTH")
    token_cache_path: Path | None = Field(None, validation_alias="MEETREG_TOKEN_CACHE")
    rate_limit_per_s: float = Field(
        DEFAULT_RATE_LIMIT_PER_S, gt=0, validation_alias="MEETREG_RATE_LIMIT"
    )
    concurrency: int = Field(
        DEFAULT_CONCURRENCY, ge=1, le=1024, validation_alias="MEETREG_CONCURRENCY"
    )
    recovery_s: float = Field(DEFAULT_RECOVERY_S, ge=3, validation_alias="MEETREG_RECOVERY_S")
    max_attempts: int = Field(
        DEFAULT_MAX_ATTEMPTS, ge=1, le=100, validation_alias="MEETREG_MAX_ATTEMPTS"
    )
    get_before_post: bool = Field(True, validation_alias="MEETREG_GET_BEFORE_POST")
    # What a webinar registrant's row without a time zone or language asks for.
    webinar_timezone: str = Field(
        DEFAULT_WEBINAR_TIMEZONE,
        min_length=1,
        max_length=128,
        validation_alias="MEETREG_WEBINAR_TIMEZONE",
    )
    webinar_language: str = Field(
        DEFAULT_LANGUAGE,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        validation_alias="MEETREG_WEBINAR_LANGUAGE",
    )
    retention_days: float = Field(
        DEFAULT_RETENTION_DAYS, gt=0, validation_alias="MEETREG_RETENTION_DAYS"
    )
    idempotency_retention_days: float = Field(
        DEFAULT_IDEMPOTENCY_RETENTION_DAYS,
        gt=0,
        validation_alias="MEETREG_IDEMPOTENCY_RETENTION_DAYS",
    )
    request_timeout_s: float = Field(
        DEFAULT_REQUEST_TIMEOUT_S, gt=0, validation_alias="MEETREG_REQUEST_TIMEOUT_S"
    )
    backoff_base_s: float = Field(
        DEFAULT_BACKOFF_BASE_S, gt=0, le=60, validation_alias="MEETREG_BACKOFF_BASE_S"
    )
    envelope_size: int = Field(
        DEFAULT_ENVELOPE_SIZE, ge=1, le=20, validation_alias="MEETREG_ENVELOPE_SIZE"
    )
    chunk_size: int = Field(
        DEFAULT_CHUNK_SIZE, ge=1, le=1000, validation_alias="MEETREG_CHUNK_SIZE"
    )
    # The safety valve: a batch pauses when this many rows in a row failed the same way,
    # for at least `pause_min_users` organizers (0: never).
    pause_after: int = Field(20, ge=0, le=10_000, validation_alias="MEETREG_PAUSE_AFTER")
    pause_min_users: int = Field(3, ge=1, le=1000, validation_alias="MEETREG_PAUSE_MIN_USERS")
    # `meetreg serve`: the shared secret Graph echoes in every notification (≤ 128 chars,
    # Graph's limit), and the key callers of the JSON intake present as a bearer token.
    webhook_client_state: SecretStr | None = Field(
        None, min_length=16, max_length=128, validation_alias="MEETREG_WEBHOOK_CLIENT_STATE"
    )
    api_key: SecretStr | None = Field(None, min_length=16, validation_alias="MEETREG_API_KEY")
    # Reading the status page and reports: the viewer key as an HTTP Basic password (or
    # the API key); MEETREG_PUBLIC_PAGES=true lets anyone who reaches the port read them.
    viewer_key: SecretStr | None = Field(None, min_length=16, validation_alias="MEETREG_VIEWER_KEY")
    public_pages: bool = Field(False, validation_alias="MEETREG_PUBLIC_PAGES")
    serve_max_connections: int = Field(
        DEFAULT_SERVE_MAX_CONNECTIONS, ge=1, validation_alias="MEETREG_SERVE_MAX_CONNECTIONS"
    )
    serve_keep_alive_s: int = Field(
        DEFAULT_SERVE_KEEP_ALIVE_S, ge=1, le=3600, validation_alias="MEETREG_SERVE_KEEP_ALIVE_S"
    )
    serve_header_timeout_s: float = Field(
        DEFAULT_SERVE_HEADER_TIMEOUT_S,
        gt=0,
        le=3600,
        validation_alias="MEETREG_SERVE_HEADER_TIMEOUT_S",
    )
    serve_body_timeout_s: float = Field(
        DEFAULT_SERVE_BODY_TIMEOUT_S, gt=0, le=3600, validation_alias="MEETREG_SERVE_BODY_TIMEOUT_S"
    )
    intake_max_bytes: int = Field(
        DEFAULT_INTAKE_MAX_BYTES, ge=1024, validation_alias="MEETREG_INTAKE_MAX_BYTES"
    )
    # The nightly job (`celery -A worker.app beat`, `meetreg nightly --once`).
    nightly_cron: str = Field(DEFAULT_NIGHTLY_CRON, validation_alias="MEETREG_NIGHTLY_CRON")
    drop_dir: Path | None = Field(None, validation_alias="MEETREG_DROP_DIR")
    timezone: str = Field(DEFAULT_TIMEZONE, validation_alias="MEETREG_TIMEZONE")
    beat_lock_timeout_s: float = Field(
        DEFAULT_BEAT_LOCK_TIMEOUT_S,
        ge=2 * BEAT_TICK_S,
        le=3600,
        validation_alias="MEETREG_BEAT_LOCK_TIMEOUT_S",
    )

    # The TLS trust, under the standard names, read here so that a `.env` sets it too
    # (httpx and requests read only the environment). Either kind works for both: the
    # Graph client (httpx) prefers SSL_CERT_FILE and SSL_CERT_DIR, the sign-in (MSAL's
    # requests session) REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, as the libraries do.
    ssl_cert_file: Path | None = Field(None, validation_alias="SSL_CERT_FILE")
    ssl_cert_dir: Path | None = Field(None, validation_alias="SSL_CERT_DIR")
    requests_ca_bundle: Path | None = Field(None, validation_alias="REQUESTS_CA_BUNDLE")
    curl_ca_bundle: Path | None = Field(None, validation_alias="CURL_CA_BUNDLE")

    # Observability: /metrics on each worker, and how logs are written (worker.telemetry.logs).
    # `metrics_port` None: a worker's default (DEFAULT_METRICS_PORT); `meetreg run` opens
    # no port unless it is set.
    metrics_port: int | None = Field(None, ge=0, le=65535, validation_alias="MEETREG_METRICS_PORT")
    metrics_host: str = Field(DEFAULT_METRICS_HOST, validation_alias="MEETREG_METRICS_HOST")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", validation_alias="MEETREG_LOG_FORMAT"
    )
    # None: the process's default (INFO for services, WARNING for one-shot commands).
    log_level: str | None = Field(None, validation_alias="MEETREG_LOG_LEVEL")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        _read_renamed([env_settings, dotenv_settings])
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("graph_base_url", "authority_host")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _is_redis_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        parse_redis_url(value, sentinel_master=info.data.get("redis_sentinel_master"))
        return value

    @field_validator("nightly_cron")
    @classmethod
    def _is_cron(cls, value: str) -> str:
        return parse_cron(value).text

    @field_validator("timezone")
    @classmethod
    def _is_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name such as UTC or Europe/Paris") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _is_log_level(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _blank_port_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "drop_dir",
        "token_cache_path",
        "auth",
        "ssl_cert_file",
        "ssl_cert_dir",
        "requests_ca_bundle",
        "curl_ca_bundle",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty MEETREG_DROP_DIR would otherwise be Path(""): the current folder.
        # An empty MEETREG_AUTH means "not chosen", as when it is absent.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def nightly(self) -> Cron:
        return parse_cron(self.nightly_cron)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def graph_v1_base_url(self) -> str:
        """Where calendar events and subscriptions live: the GA version (`v1.0`) beside
        GRAPH_BASE_URL's, on the same host (national clouds included)."""
        root, _, version = self.graph_base_url.rpartition("/")
        if version.lower() in ("beta", "v1.0"):
            return f"{root}/v1.0"
        return self.graph_base_url  # a proxy with a path of its own: same root for both

    @property
    def graph_ca(self) -> Path | None:
        """The CA file or folder the Graph client trusts; None: its own bundle."""
        return self._httpx_ca or self._requests_ca

    @property
    def login_ca(self) -> Path | None:
        """The CA file or folder the sign-in trusts; None: requests' own bundle."""
        return self._requests_ca or self._httpx_ca

    @property
    def _httpx_ca(self) -> Path | None:
        return self.ssl_cert_file or self.ssl_cert_dir

    @property
    def _requests_ca(self) -> Path | None:
        return self.requests_ca_bundle or self.curl_ca_bundle

    @property
    def lease_ms(self) -> int:
        """How long a worker's claim on a row lives without renewal.

        Half the recovery time: a dead worker's rows expire, and the sweeper, which runs
        every quarter of it, finds them well within `recovery_s`.
        """
        return int(self.recovery_s * 500)

    @property
    def sweep_interval_s(self) -> float:
        return self.recovery_s / 4

    @property
    def worker_metrics_port(self) -> int:
        """Where a `celery worker` process serves /metrics (0: nowhere)."""
        return DEFAULT_METRICS_PORT if self.metrics_port is None else self.metrics_port

    def require_redis(self) -> RedisTarget:
        """The Redis REDIS_URL names; raises ConfigError when it is not set."""
        if not self.redis_url:
            raise ConfigError("REDIS_URL is not set (e.g. redis://localhost:6379/0)")
        try:
            return parse_redis_url(self.redis_url, sentinel_master=self.redis_sentinel_master)
        except ValueError as exc:  # a CA file removed since start-up, say
            raise ConfigError(f"REDIS_URL: {exc}") from None

    @property
    def auth_mode(self) -> AuthMode | None:
        """MEETREG_AUTH, else the app credential that is set (the secret wins, as in
        azure-identity's EnvironmentCredential), else None: nothing configured."""
        if self.auth is not None:
            return self.auth
        if self.client_secret:
            return AuthMode.SECRET
        if self.client_certificate_path:
            return AuthMode.CERTIFICATE
        return None

    @property
    def token_cache(self) -> Path:
        """The delegated token cache file: MEETREG_TOKEN_CACHE, else the config folder's."""
        return self.token_cache_path or default_token_cache()

    @property
    def registrant_defaults(self) -> Defaults:
        """What a registrant's row without a time zone or language asks for."""
        return Defaults(self.webinar_timezone, self.webinar_language.lower())

    def require_credentials(self) -> AuthMode:
        """The credential mode, with what it needs; raises ConfigError naming what is
        missing (one line). Managed identity needs nothing: the Azure host provides it."""
        mode = self.auth_mode
        needed: list[tuple[str, object]] = []
        if mode in (AuthMode.SECRET, AuthMode.CERTIFICATE, AuthMode.DELEGATED, None):
            needed += [("AZURE_TENANT_ID", self.tenant_id), ("AZURE_CLIENT_ID", self.client_id)]
        if mode is AuthMode.SECRET:
            needed.append(("AZURE_CLIENT_SECRET", self.client_secret))
        elif mode is AuthMode.CERTIFICATE:
            needed.append(("AZURE_CLIENT_CERTIFICATE_PATH", self.client_certificate_path))
        elif mode is None:
            needed.append(("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH", None))
        missing = [name for name, value in needed if not value]
        if missing:
            chosen = f" (MEETREG_AUTH={mode})" if self.auth is not None else ""
            hint = "" if mode else " (or MEETREG_AUTH=managed-identity or delegated)"
            raise ConfigError(f"missing configuration{chosen}: {', '.join(missing)}{hint}")
        assert mode is not None
        return mode

    def require_drop_dir(self) -> Path:
        if self.drop_dir is None:
            raise ConfigError(
                "MEETREG_DROP_DIR is not set (the folder the nightly job takes CSV files from)"
            )
        return self.drop_dir

    def require_client_state(self) -> str:
        if self.webhook_client_state is None:
            raise ConfigError(
                "MEETREG_WEBHOOK_CLIENT_STATE is not set (16-128 characters, kept secret)"
            )
        return self.webhook_client_state.get_secret_value()


def _read_renamed(sources: Iterable[PydanticBaseSettingsSource]) -> None:
    """Let each source (the environment, `.env`) answer for a RENAMED name under its old
    one, unless the new one is set in either; warn once per old name found."""
    readers = [source for source in sources if isinstance(source, EnvSettingsSource)]
    for old, new in RENAMED.items():
        # Names are read case-insensitively: the sources keep them lower-cased.
        old_key, new_key = old.lower(), new.lower()
        new_is_set = any(new_key in reader.env_vars for reader in readers)
        for reader in readers:
            if old_key not in reader.env_vars:
                continue
            if old not in _warned:
                _warned.add(old)
                log.warning("%s is deprecated; use %s", old, new)
            if not new_is_set:
                reader.env_vars = {**reader.env_vars, new_key: reader.env_vars[old_key]}


def renamed_in_use() -> list[str]:
    """The RENAMED old names this process has read a setting from (`meetreg doctor`)."""
    return [old for old in RENAMED if old in _warned]


_FIELD_TO_ENV = {
    name: (field.validation_alias if isinstance(field.validation_alias, str) else name)
    for name, field in Settings.model_fields.items()
}


def load_settings(**overrides: object) -> Settings:
    """Read the settings once. Raises ConfigError with one line naming the bad variable.

    The message names the variable and the rule, never the value: it may be a secret.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "configuration"
        name = _FIELD_TO_ENV.get(field, field)
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None


_settings: Settings | None = None


def use_settings(settings: Settings) -> None:
    """Make this process use `settings` instead of reading the environment (meetreg run)."""
    global _settings
    _settings = settings


def current_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings
