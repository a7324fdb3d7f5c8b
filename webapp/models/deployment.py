"""Deployments: one upstream model behind a name, for a team or for everyone."""
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import new_id, utcnow


class Deployment(db.Model):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    team_id: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    # for team models the internal name model_name_<team>_<uuid>; for global ones the public name
    model_name: Mapped[str] = mapped_column(String(512), index=True)
    public_name: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str] = mapped_column(String(64))
    # litellm_params as sent (model, api_base, api_version, timeouts...), secrets removed
    params: Mapped[dict] = mapped_column(db.JSON, default=dict)
    model_info: Mapped[dict] = mapped_column(db.JSON, default=dict)
    # the row's own secrets (the fields its provider declares secret): field name -> AES-GCM
    # ciphertext bound to the row id, and field name -> masked form
    secrets: Mapped[dict | None] = mapped_column(db.JSON, default=dict)
    secrets_masked: Mapped[dict | None] = mapped_column(db.JSON, default=dict)
    # the origin (scheme://host:port) the row's own secrets were saved for; they go nowhere else
    secrets_origin: Mapped[str | None] = mapped_column(String(320))
    credential_id: Mapped[str | None] = mapped_column(
        ForeignKey("provider_credentials.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(256))
    updated_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
