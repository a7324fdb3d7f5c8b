"""One row per proxied call: who called which model, how it went, how long it took."""
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import utcnow


class RequestLogEntry(db.Model):
    __tablename__ = "request_log"
    # a team's recent calls and spend: the dashboard's usage pages read by team and time
    __table_args__ = (Index("ix_request_log_team_id_created_at", "team_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    team_id: Mapped[str | None] = mapped_column(String(128), index=True)
    key_token: Mapped[str | None] = mapped_column(String(64))
    key_name: Mapped[str | None] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(64))
    public_model: Mapped[str | None] = mapped_column(String(256))
    deployment_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int]
    latency_ms: Mapped[float]
    overhead_ms: Mapped[float | None]
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    # of prompt_tokens, those read from and written to the upstream's prompt cache
    cache_read_tokens: Mapped[int | None]
    cache_creation_tokens: Mapped[int | None]
    # USD from the deployment's or the price map's prices; None: the model is unpriced
    cost: Mapped[float | None]
    stream: Mapped[bool] = mapped_column(default=False)
    error_type: Mapped[str | None] = mapped_column(String(32))
