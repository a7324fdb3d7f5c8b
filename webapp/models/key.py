"""Virtual keys: stored only as a SHA-256 digest, shown in full once."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import utcnow


class VirtualKey(db.Model):
    __tablename__ = "virtual_keys"
    # an alias is unique within its team: another team's aliases neither clash nor show
    __table_args__ = (UniqueConstraint("team_id", "key_alias",
                                       name="uq_virtual_keys_team_id_key_alias"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    key_name: Mapped[str] = mapped_column(String(16))  # masked form, sk-...abcd
    key_alias: Mapped[str | None] = mapped_column(String(256))
    team_id: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(String(256))
    models: Mapped[list] = mapped_column(db.JSON, default=list)
    meta: Mapped[dict] = mapped_column("metadata", db.JSON, default=dict)
    limits: Mapped[dict] = mapped_column(db.JSON, default=dict)
    blocked: Mapped[bool] = mapped_column(default=False)
    # LiteLLM fields Teamgate keeps and returns without acting on them (services/dialect.py)
    extra: Mapped[dict | None] = mapped_column(db.JSON, default=dict)
    expires: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(256))
    last_used_at: Mapped[datetime | None]
