"""Teams, their alias table (public model name -> internal deployment name) and the ids of
deleted teams."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import new_id, utcnow


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(128), primary_key=True, default=new_id)
    alias: Mapped[str | None] = mapped_column(String(256))
    # global models this team may call; empty means all
    models: Mapped[list] = mapped_column(db.JSON, default=list)
    meta: Mapped[dict] = mapped_column("metadata", db.JSON, default=dict)
    limits: Mapped[dict] = mapped_column(db.JSON, default=dict)
    blocked: Mapped[bool] = mapped_column(default=False)
    # LiteLLM's model_aliases: a name the team calls -> the model it means (its own models'
    # public names always win; they live in team_model_aliases)
    model_aliases: Mapped[dict | None] = mapped_column(db.JSON, default=dict)
    # LiteLLM fields Teamgate keeps and returns without acting on them (services/dialect.py)
    extra: Mapped[dict | None] = mapped_column(db.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(256))

    aliases: Mapped[list["TeamModelAlias"]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="TeamModelAlias.public_name"
    )


class TeamModelAlias(db.Model):
    __tablename__ = "team_model_aliases"
    __table_args__ = (UniqueConstraint("team_id", "public_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    public_name: Mapped[str] = mapped_column(String(256))
    internal_name: Mapped[str] = mapped_column(String(512), unique=True)
    created_by: Mapped[str] = mapped_column(String(256))
    updated_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    team: Mapped[Team] = relationship(back_populates="aliases")


class DeletedTeam(db.Model):
    """A deleted team's id, never given to a new team: the request log and the audit trail
    keep rows by team id, and a new team must not show the old one's as its own."""
    __tablename__ = "deleted_teams"

    team_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_by: Mapped[str | None] = mapped_column(String(256))
