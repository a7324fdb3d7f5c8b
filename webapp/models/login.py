"""Counts of failed dashboard logins, per client address and per address and email, in fixed
windows. Kept in the database so that every worker and every instance counts the same attempts;
rows whose window has passed are pruned and the number of rows is capped."""
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db


class LoginCounter(db.Model):
    __tablename__ = "login_counters"

    # SHA-256 of what is counted, so a row is small whatever the client sends as its email
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(index=True)
    count: Mapped[int] = mapped_column(default=0)
