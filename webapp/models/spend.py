"""Spend per subject (a key, a team, a team's own models, a user, a team member) since its
budget last reset; the request-log writer adds each batch's cost in the batch's transaction."""
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import utcnow

# kind: "key" (token), "team" (team id, every call), "team_own" (team id, calls to the team's
# own models), "user" (user id), "member" ("<team id>/<user id>")
KINDS = ("key", "team", "team_own", "user", "member")


class SpendCounter(db.Model):
    __tablename__ = "spend"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    spend: Mapped[float] = mapped_column(default=0.0)
    # the next reset of a subject with a budget_duration; None: never
    budget_reset_at: Mapped[datetime | None]
    # the soft budget's alert of the current budget period went out (cleared by a reset)
    soft_alerted_at: Mapped[datetime | None]
    # a budget held here for subjects without a row of their own to hold it: a team member's
    # max_budget_in_team, a user's max_budget
    max_budget: Mapped[float | None]
    budget_duration: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
