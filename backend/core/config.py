"""Settings: one object, read from the environment and an optional `.env` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVER_TIMEZONE = "Europe/Berlin"


class Settings(BaseSettings):
    """Every setting of the service, with the default that makes a first start work."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path(".data")
    log_dir: Path | None = None
    log_level: str = "INFO"

    database_url: SecretStr | None = None
    archive_database_url: SecretStr | None = None
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=20, ge=1)
    redis_url: SecretStr | None = None

    jwt_secret: SecretStr | None = None
    message_keys: SecretStr | None = None
    token_ttl_seconds: int = Field(default=3600, ge=60)
    revocation_sweep_seconds: float = Field(default=15.0, gt=0)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)

    login_account_failures: int = Field(default=10, ge=1)
    login_address_failures: int = Field(default=30, ge=1)
    login_lock_seconds: float = Field(default=60.0, gt=0)
    login_max_lock_seconds: float = Field(default=900.0, gt=0)

    allowed_origins: str = ""
    ws_frame_rate: float = Field(default=20.0, gt=0)
    ws_frame_burst: int = Field(default=100, ge=1)
    ws_max_frame_bytes: int = Field(default=65536, ge=1024)
    ws_auth_timeout_seconds: float = Field(default=5.0, gt=0)
    ws_send_queue: int = Field(default=1000, ge=8)
    guest_rate_per_minute: int = Field(default=120, ge=1)
    http_message_rate: float = Field(default=20.0, gt=0)
    http_message_burst: int = Field(default=100, ge=1)
    max_request_bytes: int = Field(default=1_048_576, ge=1024)

    invitation_ttl_hours: float = Field(default=24.0, gt=0)
    archive_after_days: int = Field(default=7, ge=0)
    archive_interval_seconds: int = Field(default=3600, ge=1)
    archive_batch_size: int = Field(default=500, ge=1, le=10_000)
    public_url: str = ""

    # The bot answers new customer chats first; off, a new chat waits for a supporter at once.
    bot_enabled: bool = True
    # Answer only when the calibrated confidence reaches this (chosen for <= 8% wrong answers,
    # docs/evaluation.md); below it the bot asks back (two close articles) or hands over.
    bot_answer_threshold: float = Field(default=0.6, ge=0, le=1)
    bot_timeout_seconds: float = Field(default=20.0, gt=0)
    bot_workers: int = Field(default=2, ge=1, le=64)
    bot_queue: int = Field(default=1000, ge=1, le=100_000)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=12.0, gt=0)
    # Personal data masked before text goes to the LLM: any of iban, card, email, phone.
    llm_mask: str = "iban,card,email,phone"
    # Declined and handed-over questions at least this similar (cosine) form one knowledge gap.
    gaps_similarity: float = Field(default=0.6, ge=0, le=1)
    embedding_model: str = "all-MiniLM-L6-v2"
    # Suggested replies for supporters (text modules and knowledge articles).
    suggestions_enabled: bool = True
    suggestion_queue: int = Field(default=256, ge=1, le=100_000)
    # A knowledge folder ingested in the background when the knowledge tables are empty;
    # `serve` uses knowledge/ next to the package when this is unset.
    demo_knowledge_dir: str | None = None

    @field_validator("allowed_origins")
    @classmethod
    def _strip_origins(cls, value: str) -> str:
        return ",".join(part.strip().rstrip("/") for part in value.split(",") if part.strip())

    @property
    def origin_allowlist(self) -> frozenset[str]:
        """Origins allowed to open a WebSocket besides the page's own."""
        return frozenset(part for part in self.allowed_origins.split(",") if part)

    @property
    def logs_path(self) -> Path:
        """Where rotated log files go."""
        return self.log_dir if self.log_dir is not None else self.data_dir / "logs"
