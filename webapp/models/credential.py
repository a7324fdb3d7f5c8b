"""Provider keys pasted once under a name and shared by several deployments of a team."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import new_id, utcnow


class ProviderCredential(db.Model):
    __tablename__ = "provider_credentials"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    secret_masked: Mapped[str] = mapped_column(String(16))
    # the origins (scheme://host:port) this key may be sent to; empty until its first use
    bound_origins: Mapped[list] = mapped_column(db.JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(256))
    updated_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
