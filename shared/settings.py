"""Typed application settings, read from ``YUEJUAN_*`` environment variables by an explicit call."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Quantization = Literal["none", "8bit", "4bit"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
DtypeChoice = Literal["auto", "float32", "bfloat16", "float16"]

GPU_DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"
CPU_DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"


class Settings(BaseSettings):
    """Everything configurable about a Yuejuan installation.

    Defaults describe the embedded single-machine mode: SQLite and a SQLite-backed Celery broker
    inside ``data_dir``. Point ``database_url`` / ``broker_url`` at PostgreSQL and Redis to scale out.
    """

    # An empty variable means "use the default", so docker-compose can pass every setting through as ${VAR:-}.
    model_config = SettingsConfigDict(env_prefix="YUEJUAN_", extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(default=Path("./data"), description="Where SQLite files, uploads and reports live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir.")
    broker_url: str | None = Field(default=None, description="Celery broker; default SQLite transport in data_dir.")

    model: str | None = Field(default=None, description="Local path or hub id; default depends on the device.")
    device: DeviceChoice = "auto"
    dtype: DtypeChoice = "auto"
    quantization: Quantization = "none"
    engine: Literal["auto", "transformers", "llamacpp"] = Field(
        default="auto", description="auto: llama.cpp for a .gguf model path, transformers otherwise."
    )
    cpu_threads: int | None = Field(default=None, ge=1, description="llama.cpp threads; default: the usable cores.")
    parallel_slots: int | None = Field(
        default=None, ge=1, le=64, description="Essays llama.cpp decodes at once; default: the measured best (4)."
    )
    engine_class: str | None = Field(
        default=None, description="module:Class of an alternative engine with the same interface."
    )
    model_retry_s: float = Field(
        default=30, ge=0,
        description="A grading worker whose model cannot be loaded tries again this often (essays wait in the queue); "
        "0 stops the worker instead.",
    )
    batch_token_budget: int = Field(default=16384, ge=256, description="Prompt+answer tokens per batch.")
    max_new_tokens: int = Field(
        default=1024, ge=400, description="Answer tokens per essay; the closing guard ends every answer within it."
    )
    no_repeat_chars: int = Field(
        default=6, ge=0, le=200,
        description="Inside a string of an answer, the model may not copy again a run of this many characters it "
        "already wrote in that string (a looping model); 0 or 1: off.",
    )
    quotes_from_essay: bool = Field(
        default=True, description="The model's quotations (evidence, an error's original text) can only be passages "
        "of the essay it was shown (the transformers engine).",
    )
    max_essay_chars: int = Field(default=6000, ge=100)
    adapter_promotion_margin: float = Field(
        default=0.02, ge=0.0, le=1.0,
        description="How much better (share of held-out essays within tolerance) a new LoRA adapter must be.",
    )

    secret_key: str = Field(default="dev-insecure-change-me", min_length=8)
    max_upload_mb: int = Field(default=50, ge=1)
    max_upload_files: int = Field(default=500, ge=1)
    parse_memory_mb: int = Field(
        default=512, ge=128, description="Address space of the process that parses one upload (RLIMIT_AS)."
    )
    parse_seconds: int = Field(
        default=30, ge=1, description="CPU seconds for parsing one upload (RLIMIT_CPU); twice this in wall time."
    )
    session_cookie_secure: bool = Field(default=False, description="Send the session cookie over HTTPS only.")
    api_token_days: int = Field(
        default=90, ge=1, le=3650, description="An API token stops working this many days after it was issued."
    )

    timezone: str = Field(
        default="Asia/Shanghai", description="The time zone every time a person reads is shown in (IANA name)."
    )
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    proxy_hops: int = Field(
        default=0, ge=0, le=5,
        description="Reverse proxies in front of the web app whose X-Forwarded-For/-Proto headers are trusted.",
    )
    allowed_networks: str = Field(
        default="", description="Comma-separated CIDRs allowed to use the web app; empty allows every address."
    )
    metrics_token: str | None = Field(
        default=None, description="Bearer token for /metrics from other hosts (loopback needs none)."
    )
    retention_days: int = Field(
        default=365, ge=0, description="Essays, grades and reports older than this are purged; 0 keeps them."
    )
    chat_idle_minutes: int = Field(
        default=30, ge=1,
        description="A student's chat session idle this long is closed; the next question starts anew.",
    )
    chat_questions_per_hour: int = Field(default=30, ge=1, description="Questions one student may ask per hour.")
    chat_max_new_tokens: int = Field(default=256, ge=8, description="Longest chat answer, in tokens.")
    chat_context_tokens: int = Field(
        default=2048, ge=256, description="Prompt budget of a chat turn: sources, then history, newest turns kept."
    )
    student_code_days: int = Field(
        default=14, ge=1, description="A student's one-time sign-up code expires after this many days."
    )
    max_grading_attempts: int = Field(default=3, ge=1)
    task_time_limit_s: int = Field(default=1800, ge=5, description="Hard limit for one grading batch.")
    broker_visibility_timeout_s: int = Field(
        default=7200, ge=10, description="Redis redelivers an unacknowledged task after this long."
    )
    worker_heartbeat_s: float = Field(
        default=15, gt=0, description="Each worker process writes its status row this often, idle or busy."
    )
    worker_lost_after_s: float = Field(
        default=45, gt=0, description="A worker whose row is older than this shows 失联 and no longer counts as ready."
    )
    lease_s: int = Field(
        default=60, ge=5,
        description="A grading task renews its claim on its essays every third of this; a claim not renewed for "
        "this long belongs to a task that is gone, and the sweep recovers its essays.",
    )
    sweep_interval_s: int = Field(
        default=15, ge=1, description="How often `yuejuan beat` sends the sweep that recovers stranded essays."
    )
    stale_after_s: int = Field(
        default=20, ge=1,
        description="A queued essay that has waited this long with no grading task in the broker is sent again.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from exc
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        for part in _split_networks(value):
            ipaddress.ip_network(part, strict=False)  # raises ValueError with the offending text
        return value

    def allowed_network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(part, strict=False) for part in _split_networks(self.allowed_networks)]

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'yuejuan.sqlite').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    def uses_embedded_broker(self) -> bool:
        return self.resolved_broker_url().startswith("sqla+")

    def resolved_model(self, cuda_available: bool) -> str:
        if self.model:
            return self.model
        return GPU_DEFAULT_MODEL if cuda_available else CPU_DEFAULT_MODEL


def _split_networks(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides). Never called at import time."""
    return Settings(**overrides)  # type: ignore[arg-type]
