"""Dashboard users and their team memberships."""
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import new_id, utcnow

ROLES = ("admin", "member")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # changes on logout and password change, so an old session cookie stops working
    session_token: Mapped[str] = mapped_column(String(64), default=new_id)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # LiteLLM's user_role (proxy_admin, internal_user, ...); is_admin is what Teamgate acts on
    role: Mapped[str | None] = mapped_column(String(32))
    # LiteLLM fields Teamgate keeps and returns without acting on them (services/dialect.py)
    extra: Mapped[dict | None] = mapped_column(db.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def role_in(self, team_id: str) -> str | None:
        for membership in self.memberships:
            if membership.team_id == team_id:
                return membership.role
        return None


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "team_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")

    user: Mapped[User] = relationship(back_populates="memberships")
