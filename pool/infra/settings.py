"""All settings in one frozen object, read from `VWE_*` environment variables and `.env`.

Built once in `main()` and passed down; nothing else reads the environment. Every field is
documented with its default in `config/settings.env.example`.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import parse_url

from pool.core import constants
from pool.core.exceptions import ConfigError
from pool.core.pool_policy import BY_NAME, FIELDS, PolicyError, PoolPolicy
from pool.infra.safefs import WalkLimits

ENV_PREFIX = "VWE_"
# The smallest memory limit the Docker engine accepts for a container (6 MiB).
DOCKER_MIN_MEMORY = 6 << 20


SentinelAddresses = Annotated[tuple[tuple[str, int], ...] | None, NoDecode]


def parse_sentinels(value: Any) -> tuple[tuple[str, int], ...] | None:
    """`host:port` entries separated by commas or spaces -> ((host, port), ...); None when
    empty. Raises ValueError naming the entry that is not `host:port` with a valid port."""
    if value is None or (isinstance(value, tuple | list) and not value):
        return None
    if not isinstance(value, str):
        return tuple((str(h), int(p)) for h, p in value)
    out = []
    for entry in value.replace(",", " ").split():
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} is not host:port (a list such as "
                             f"'10.0.0.1:26379,10.0.0.2:26379')")
        out.append((host.strip("[]"), int(port)))
    return tuple(out) or None


def _policy(name: str, default: Any) -> Any:
    """A policy setting: bounds and meaning from `pool.core.pool_policy.FIELDS`, numbers
    finite (`inf`, `1e999` refused)."""
    spec = BY_NAME[name]
    return Field(default, description=spec.doc, **spec.field_constraints())


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _memory_bytes(value: str) -> int:
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(value.rstrip("bkmg")) * units.get(value[-1], 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", frozen=True, extra="ignore",
        # `inf`, `nan` and `1e999` are never a useful duration, size or ratio.
        allow_inf_nan=False,
    )

    # --- the contract names (docs/architecture.md, "Settings") ---
    redis_url: str = "redis://127.0.0.1:6379/0"
    pool_size: int = _policy("size", 2)
    pool_max: int = _policy("max", 8)
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    # Finished worlds; may be a shared mount read by every API process (docs/deploy.md).
    # Unset: VWE_DATA_DIR/worlds (`_default_worlds_dir`).
    worlds_dir: Path = Path("data/worlds")
    worker_image: str = "vwe-worker:latest"
    api_token: SecretStr | None = None

    # --- Redis high availability (docs/deploy.md) ---
    redis_sentinels: SentinelAddresses = None
    redis_master: str = Field("vwe", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_password: SecretStr | None = None
    redis_sentinel_password: SecretStr | None = None
    redis_min_replicas: int = Field(0, ge=0, le=16)
    redis_wait_timeout_s: float = Field(1.0, gt=0, le=60)

    # --- Redis: bounded waits and connection pools (see pool/store/redis_client.py) ---
    redis_timeout_s: float = Field(2.0, gt=0, le=60)
    redis_pool_timeout_s: float = Field(10.0, gt=0, le=120)
    redis_api_connections: int = Field(64, ge=2, le=10_000)
    redis_daemon_connections: int = Field(16, ge=4, le=1000)

    # --- templates (pool/infra/templates.py; docs/deploy.md, "Templates") ---
    # The TOML file defining the templates; unset: only `default`, from these settings.
    templates_file: Path | None = None
    # The templates this process runs a pool for (comma-separated; `serve --templates`).
    templates: str = Field("default", pattern=r"^[a-z0-9][a-z0-9_.,\s-]{0,511}$")

    # --- identity ---
    pool_name: str = Field("vwe", pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")
    # The template of a pool (vwe.template label, metrics label, key scope): set per pool
    # from the templates (`pool.infra.templates.Template.settings_for`).
    template: str = Field("default", pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")
    instance_id: str = Field(default_factory=_default_instance, min_length=1, max_length=100)
    # The instance lease's TTL: a daemon silent this long is taken for dead and its containers
    # may be taken over. Renewed every second by a thread of its own, so only a stall of the
    # whole process (or Redis unreachable) this long loses it.
    heartbeat_ttl_s: float = Field(10.0, ge=3, le=300)

    # --- worker containers ---
    worker_memory: str = Field("1g", pattern=r"^[0-9]+[bkmg]?$")
    worker_cpus: float = Field(1.0, gt=0)
    worker_pids: int = Field(64, ge=16)
    worker_user: str = "10001:10001"
    worker_ready_delay_s: float = Field(0.0, ge=0)
    map_resolution: int = Field(2048, ge=16, le=4096)
    # Docker log options of each worker (bounded: a worker cannot fill the host's disk).
    worker_log_driver: Literal["json-file", "local"] = "json-file"
    worker_log_max_size: str = Field("1m", pattern=r"^[1-9][0-9]*[kmg]?$")
    worker_log_max_file: int = Field(3, ge=1, le=100)

    # --- worker output: untrusted input (pool/infra/safefs.py) ---
    output_max_files: int = Field(256, ge=1, le=1_000_000)
    output_max_depth: int = Field(8, ge=1, le=64)
    output_max_name_bytes: int = Field(100, ge=16, le=255)
    output_max_bytes: int = Field(1 << 30, ge=1 << 20)

    # --- pool policy ---
    pool_min: int = _policy("min", 0)
    boot_timeout_s: float = Field(60.0, gt=0)
    max_concurrent_boots: int = _policy("max_concurrent_boots", 2)
    boot_backoff_s: float = Field(1.0, ge=0)
    boot_backoff_max_s: float = Field(60.0, ge=0)
    max_age_s: float = _policy("max_age_s", 3600.0)
    max_uses: int = _policy("max_uses", 100)
    idle_ttl_s: float = _policy("idle_ttl_s", 1800.0)
    surplus_idle_s: float = _policy("surplus_idle_s", 60.0)
    health_interval_s: float = Field(10.0, gt=0)
    maintenance_interval_s: float = Field(2.0, gt=0)
    handoff_timeout_s: float = Field(5.0, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)

    # --- jobs ---
    job_timeout_s: float = Field(300.0, gt=0)
    job_max_attempts: int = Field(3, ge=1)
    queue_max: int = Field(1000, ge=1)
    # A running job's stream entry is re-claimed by its daemon every PUBLISH_INTERVAL_S: a
    # shorter idle limit would let peers take jobs that are still running.
    reclaim_idle_s: float = Field(30.0, ge=2 * constants.PUBLISH_INTERVAL_S)
    result_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    api_answer_cache_s: float = Field(10.0, ge=0)
    # A world's folder outlives its expired record by at most this (the expiry sweep's period).
    expiry_sweep_interval_s: float = Field(60.0, gt=0)
    # The longest long-poll (GET /v1/jobs/{id}?wait=S) this server holds; a larger S is cut.
    api_max_wait_s: float = Field(300.0, gt=0, le=300)

    # --- HTTP server limits (api/httpguard.py) and CORS ---
    http_max_header_bytes: int = Field(16 * 1024, ge=1024, le=1 << 20)
    http_max_headers: int = Field(100, ge=16, le=10_000)
    http_max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 << 20)
    http_header_timeout_s: float = Field(10.0, gt=0, le=3600)
    http_body_timeout_s: float = Field(10.0, gt=0, le=3600)
    http_max_connections: int = Field(1024, ge=1)
    http_max_concurrency: int = Field(256, ge=1)
    # Comma-separated origins (scheme://host[:port]) allowed to call the API from a browser.
    cors_origins: str = Field("", pattern=r"^(\*|https?://[^\s,/]+(,https?://[^\s,/]+)*)?$")

    # --- the world viewer (GET /) ---
    viewer_leaflet_dir: Path = Path("/usr/share/javascript/leaflet")

    # --- autoscaling ---
    autoscale: bool = _policy("autoscale", False)
    autoscale_quantile: float = Field(0.95, gt=0, lt=1)
    autoscale_window_s: float = Field(900.0, gt=0)
    autoscale_step_down: int = Field(1, ge=1)

    # --- logging ---
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _default_worlds_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("worlds_dir"):
            data = {**data, "worlds_dir": Path(data.get("data_dir") or "data") / "worlds"}
        return data

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        try:
            parse_url(value)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        except ValueError as exc:
            raise ValueError(str(exc).replace("Redis URL", "a Redis URL")) from None
        return value

    @property
    def worker_memory_bytes(self) -> int:
        """VWE_WORKER_MEMORY in bytes (Docker's units: b, k, m, g are powers of 1024)."""
        return _memory_bytes(self.worker_memory)

    @field_validator("worker_memory")
    @classmethod
    def _worker_memory(cls, value: str) -> str:
        if _memory_bytes(value) < DOCKER_MIN_MEMORY:
            raise ValueError("at least 6m: Docker refuses a smaller memory limit, so every "
                             "boot would fail")
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token(cls, value: Any) -> Any:
        # VWE_API_TOKEN= (empty) means "no token": the admin routes are off, as documented,
        # rather than guarded by a token nobody can send.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("templates_file", mode="before")
    @classmethod
    def _no_file(cls, value: Any) -> Any:
        return None if value == "" else value  # VWE_TEMPLATES_FILE= means none, not "."

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinels(cls, value: Any) -> tuple[tuple[str, int], ...] | None:
        return parse_sentinels(value)

    @model_validator(mode="after")
    def _policy_fits(self) -> Settings:
        """The policy as a whole (size and min within max), named by its variables."""
        try:
            self.pool_policy()
        except PolicyError as exc:
            message = str(exc)
            for spec in sorted(FIELDS, key=lambda f: len(f.name), reverse=True):
                message = re.sub(rf"\b{spec.name}\b", spec.env, message)
            raise ValueError(message) from None
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [o for o in self.cors_origins.split(",") if o]

    def output_limits(self) -> WalkLimits:
        """The limits a job's output is checked with, at collection and when served."""
        return WalkLimits(max_files=self.output_max_files, max_depth=self.output_max_depth,
                          max_name_bytes=self.output_max_name_bytes,
                          max_total_bytes=self.output_max_bytes)

    def pool_policy(self) -> PoolPolicy:
        """The configured policy; run-time changes persisted in Redis overlay it."""
        return PoolPolicy(
            size=self.pool_size, max=self.pool_max, min=self.pool_min, max_age_s=self.max_age_s,
            max_uses=self.max_uses, idle_ttl_s=self.idle_ttl_s,
            max_concurrent_boots=self.max_concurrent_boots, autoscale=self.autoscale,
            surplus_idle_s=self.surplus_idle_s,
        )

    @property
    def sockets_dir(self) -> Path:
        return self.data_dir / "c"

    @property
    def staging_dir(self) -> Path:
        """Host-local, daemon-only: a job's files wait here (out of the worker's reach, on
        the sockets' filesystem) until they are published to `worlds_dir`."""
        return self.data_dir / "staging"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
            got = err.get("input")
            shown = "" if isinstance(got, dict) or field == "" else f" (got {got!r})"
            lines.append(f"{name}: {err['msg']}{shown}")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from None
