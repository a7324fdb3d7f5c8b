"""Responses that Teamgate can find again by id: which deployment made each one (so that
previous_response_id and GET /v1/responses/{id} reach it), and for deployments reached through
chat completions the conversation itself. Rows live for RESPONSES_TTL seconds; every instance on
the same database finds them (webapp/services/response_store.py)."""
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db


class StoredResponse(db.Model):
    __tablename__ = "stored_responses"

    # ids are per owner (a team, or a key without one): an upstream a team controls could
    # answer with another team's id, and must not take it over
    owner: Mapped[str] = mapped_column(String(80), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(64))
    public_model: Mapped[str] = mapped_column(String(256))
    # JSON {"response": ..., "items": [...]} when Teamgate keeps the conversation, else null
    conversation: Mapped[str | None] = mapped_column(Text, nullable=True)
    kept: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime] = mapped_column(index=True)
