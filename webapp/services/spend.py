"""Spend per subject: added by the request-log writer in each batch's own transaction (so a
replayed batch is counted once, with its rows), read by the budget check, /key/info,
/team/info and the dashboard. Subjects: a key, a team (every call), a team's own models, a
user (through the key's user_id) and a team member."""
from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import SpendCounter, VirtualKey
from webapp.models.base import isoformat, utcnow

TABLE = SpendCounter.__table__
KEYS = VirtualKey.__table__


def member_id(team_id: str, user_id: str) -> str:
    return f"{team_id}/{user_id}"


def _totals(connection, batch: list[dict]) -> dict:
    """The batch's cost per (kind, subject id); unpriced rows add nothing. A row names its
    key's user (key_user_id, from the call); one without (written by an older Teamgate, then
    spooled) has it looked up."""
    priced = [row for row in batch if row.get("cost")]
    if not priced:
        return {}
    tokens = {row["key_token"] for row in priced
              if row.get("key_token") and "key_user_id" not in row}
    users = dict(connection.execute(select(KEYS.c.token, KEYS.c.user_id).where(
        KEYS.c.token.in_(tokens), KEYS.c.user_id.is_not(None))).all()) if tokens else {}
    totals: dict = defaultdict(float)
    for row in priced:
        cost, team, token = row["cost"], row.get("team_id"), row.get("key_token")
        user = row["key_user_id"] if "key_user_id" in row else users.get(token)
        if token:
            totals[("key", token)] += cost
        if team:
            totals[("team", team)] += cost
            if row.get("team_model"):
                totals[("team_own", team)] += cost
        if user:
            totals[("user", user)] += cost
            if team:
                totals[("member", member_id(team, user))] += cost
    return totals


def add_batch(connection, batch: list[dict]):
    """Add the batch's cost to its subjects' spend, inside the batch's transaction."""
    totals = _totals(connection, batch)
    if not totals:
        return
    now = utcnow()
    values = [{"kind": kind, "subject_id": subject, "spend": cost, "updated_at": now}
              for (kind, subject), cost in sorted(totals.items())]
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(connection.dialect.name)
    if dialect is not None:
        insert = dialect.insert(TABLE)
        connection.execute(insert.on_conflict_do_update(
            index_elements=["kind", "subject_id"],
            set_={"spend": TABLE.c.spend + insert.excluded.spend,
                  "updated_at": insert.excluded.updated_at}), values)
        return
    for value in values:  # any other database: update, else insert
        done = connection.execute(update(TABLE).where(
            TABLE.c.kind == value["kind"], TABLE.c.subject_id == value["subject_id"])
            .values(spend=TABLE.c.spend + value["spend"], updated_at=now))
        if not done.rowcount:
            connection.execute(TABLE.insert().values(**value))


def counters(subjects: list[tuple[str, str]]) -> dict:
    """(kind, id) -> SpendCounter for those that have one."""
    if not subjects:
        return {}
    rows = db.session.scalars(select(SpendCounter).where(
        SpendCounter.subject_id.in_({s for _, s in subjects})))
    wanted = set(subjects)
    return {(r.kind, r.subject_id): r for r in rows if (r.kind, r.subject_id) in wanted}


def of(kind: str, subject_id: str | None) -> float:
    """A subject's spend since its budget last reset (0.0 if it never spent)."""
    if not subject_id:
        return 0.0
    row = db.session.get(SpendCounter, (kind, subject_id))
    return row.spend if row is not None else 0.0


def for_key(row: VirtualKey) -> dict:
    """What /key/info adds to a key: spend and budget_reset_at, LiteLLM's names."""
    counter = db.session.get(SpendCounter, ("key", row.token))
    return {"spend": counter.spend if counter else 0.0,
            "budget_reset_at": isoformat(counter.budget_reset_at) if counter else None}


def for_team(team_id: str) -> dict:
    """What /team/info adds to a team: spend, and apart its own models' and global ones'."""
    found = counters([("team", team_id), ("team_own", team_id)])
    total = found[("team", team_id)].spend if ("team", team_id) in found else 0.0
    own = found[("team_own", team_id)].spend if ("team_own", team_id) in found else 0.0
    reset = found.get(("team", team_id))
    return {"spend": total, "spend_team_models": own, "spend_global_models": max(0.0, total - own),
            "budget_reset_at": isoformat(reset.budget_reset_at) if reset else None}


def for_members(team_id: str) -> list[dict]:
    """/team/info's team_memberships (LiteLLM's shape): members with spend or a budget."""
    prefix = member_id(team_id, "")
    rows = db.session.scalars(select(SpendCounter).where(
        SpendCounter.kind == "member",
        SpendCounter.subject_id.startswith(prefix, autoescape=True)).order_by(
        SpendCounter.subject_id))
    return [{"user_id": r.subject_id[len(prefix):], "team_id": team_id, "spend": r.spend,
             "litellm_budget_table": None if r.max_budget is None else {
                 "max_budget": r.max_budget, "budget_duration": r.budget_duration}}
            for r in rows]


def set_budget(kind: str, subject_id: str, max_budget: float | None,
               budget_duration: str | None = None):
    """Hold a budget on the counter (team members, users); None clears it. In the caller's
    transaction."""
    row = db.session.get(SpendCounter, (kind, subject_id))
    if row is None:
        row = SpendCounter(kind=kind, subject_id=subject_id, spend=0.0, updated_at=utcnow())
        db.session.add(row)
    row.max_budget, row.budget_duration = max_budget, budget_duration
