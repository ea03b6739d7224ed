"""One `Settings` object (environment prefix ``LOWDINO_``) configures the API server and the worker.

Embedded default (one machine, no extra servers)::

    home          ~/.lowdino
    database_url  sqlite:///<home>/lowdino.db          (WAL mode, see server.storage.engine)
    broker_url    sqla+sqlite:///<home>/broker.db      (kombu's SQLAlchemy transport: a file, no server)
    runs_dir      <home>/runs

At scale: ``LOWDINO_DATABASE_URL=postgresql+psycopg://...`` and ``LOWDINO_BROKER_URL=redis://...``.

The broker default is kombu's SQLAlchemy transport because its whole configuration is the URL: the
API (which only publishes) and the worker (which consumes) need no shared transport options, and the
queue survives restarts in a file next to the database.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ORIGIN_PATTERN = re.compile(r"https?://[^/?#\s]+", re.IGNORECASE)


def default_home() -> Path:
    return Path("~/.lowdino").expanduser()


def default_data_roots(home: Path) -> list[Path]:
    """<home>/data always; ./data and ../shared/datasets only when they exist."""
    roots = [home / "data"]
    for candidate in (Path.cwd() / "data", Path.cwd().parent / "shared" / "datasets"):
        if candidate.is_dir():
            roots.append(candidate)
    return roots


class Settings(BaseSettings):
    """API and worker configuration; every field reads ``LOWDINO_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="LOWDINO_", extra="ignore", validate_default=True)

    home: Path = Field(default_factory=default_home, description="LowDINO's own directory.")
    database_url: str = Field(
        "", description="SQLAlchemy URL. Empty: sqlite:///<home>/lowdino.db (WAL mode)."
    )
    broker_url: str = Field(
        "", description="Celery broker URL. Empty: sqla+sqlite:///<home>/broker.db (no server needed)."
    )
    api_token: str | None = Field(
        None, description="When set, every endpoint but /api/health needs 'Authorization: Bearer <token>'."
    )
    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories that dataset / weights paths in submitted configs must lie under "
        "(JSON list or os.pathsep-separated). Empty: <home>/data, ./data and ../shared/datasets if present.",
    )
    runs_dir: Path | None = Field(None, description="Run directories. Empty: <home>/runs.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest accepted request body (413 above).")
    heartbeat_interval: float = Field(5.0, gt=0, le=30, description="Seconds between worker heartbeats.")
    heartbeat_timeout: float = Field(
        30.0, gt=0, lt=60, description="A running run whose worker is silent this long becomes interrupted."
    )
    sse_poll_interval: float = Field(
        0.2,
        gt=0,
        le=2,
        description="SQLite: seconds between the event-table polls of an API process "
        "(one poll for all its SSE clients; PostgreSQL is notified instead).",
    )
    sse_max_stream_seconds: float = Field(
        0,
        ge=0,
        description="Longest life of one event stream in seconds; the server then ends it and the client's "
        "EventSource reconnects with Last-Event-ID (no event lost). 0: until the client leaves. Set it behind "
        "a load balancer so that clients spread over new API processes, or where long requests are cut.",
    )
    chain_poll_interval: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Seconds between the API's looks for completed runs whose chained evaluation is due.",
    )
    search_poll_interval: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds between the API's passes over running searches: report trials' validation "
        "kNN, prune, queue the next trials.",
    )
    search_lease_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="How long one API process drives a search before another may take over (it renews "
        "the lease every pass; a crashed process's searches move on after this long).",
    )
    max_sweep_runs: int = Field(
        200, ge=1, le=10_000, description="Largest sweep (expanded runs) one request may create."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host header values accepted besides the defaults (loopback names, this machine's "
        "names, the address a request arrived on, the `serve --host` name); comma-separated, "
        "'*.example.com' patterns, '*' accepts any (DNS rebinding protection off).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of other web apps allowed to call the API from a "
        "browser (CORS, and state-changing requests); comma-separated, '*' any. Empty: none.",
    )

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part for part in text.split(os.pathsep) if part.strip()]
        return value

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not ORIGIN_PATTERN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port] without a path, "
                    "e.g. https://notebook.example.com"
                )
        return [origin.lower() for origin in value]

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # Defaults that depend on `home` are filled here so that `settings.broker_url` etc. are always usable.
        home = self.home.expanduser()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'lowdino.db'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", f"sqla+sqlite:///{home / 'broker.db'}")
        if self.runs_dir is None:
            object.__setattr__(self, "runs_dir", home / "runs")
        if not self.data_roots:
            object.__setattr__(self, "data_roots", default_data_roots(home))
        object.__setattr__(
            self, "data_roots", [Path(root).expanduser().resolve() for root in self.data_roots]
        )
        if self.heartbeat_interval >= self.heartbeat_timeout:
            raise ValueError(
                f"heartbeat_interval ({self.heartbeat_interval}) must be below heartbeat_timeout "
                f"({self.heartbeat_timeout}); workers would look dead between beats"
            )
        return self

    @property
    def run_root(self) -> Path:
        """`runs_dir`, typed as always set."""
        assert self.runs_dir is not None
        return self.runs_dir

    def run_dir(self, run_id: str) -> Path:
        return self.run_root / run_id

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    """`get_settings()`, with invalid LOWDINO_* variables as one ConfigError line naming the field."""
    from pydantic import ValidationError

    from lowdino.config.loading import describe_validation_error
    from lowdino.errors import ConfigError

    try:
        return get_settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid LOWDINO_* settings: {describe_validation_error(exc)}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings from the environment (tests build their own `Settings(...)`)."""
    return Settings()
