"""The alias table (public name -> internal name -> deployments) and a resolver that shows how a
name sent with one of the team's keys resolves, or exactly why it does not."""
from flask import g, render_template, request
from sqlalchemy import select

from webapp.auth.principal import Principal
from webapp.dashboard import bp
from webapp.auth.dashboard_access import TEAM_MEMBER, access
from webapp.dashboard.deployments import model_rows
from webapp.extensions import db
from webapp.models import Deployment, VirtualKey
from webapp.services import deployments, resolver, teams, usage

REASONS = {
    resolver.NOT_FOUND: "No model of this team and no global model the team may use has this "
                        "name. (Names of other teams resolve exactly like unknown names.)",
    resolver.KEY_RESTRICTED: "This key is restricted to other models: {models}.",
    resolver.TEAM_RESTRICTED: "A global model has this name, but the team may call only: "
                              "{models}.",
}
HOW = {"team_alias": "the team's alias table", "team_internal": "the team's internal name",
       "global": "a global model"}


def _team_keys(team_id: str) -> list[VirtualKey]:
    return list(db.session.scalars(select(VirtualKey).where(VirtualKey.team_id == team_id)
                                   .order_by(VirtualKey.created_at)))


def explain(team_id: str, name: str, key: VirtualKey | None) -> dict:
    caller = Principal(kind="team_key", actor="resolver", team_id=team_id,
                       key_models=tuple(key.models or ()) if key else ())
    resolution = resolver.resolve(caller, name)
    if not resolution.deployments:
        models = ", ".join(key.models if resolution.how == resolver.KEY_RESTRICTED and key
                           else g.team.models or [])
        return {"ok": False, "reason": REASONS[resolution.how].format(models=models),
                "how": resolution.how}
    rows = [db.session.get(Deployment, d) for d in resolution.deployments]
    return {"ok": True, "how": HOW[resolution.how], "models": model_rows(rows),
            "failures": {r.id: usage.last_failure(r.id) for r in rows}}


@bp.get("/teams/<team_id>/aliases")
@access(TEAM_MEMBER)
def aliases(team_id):
    by_internal = {}
    for row in model_rows(deployments.for_team(team_id)):
        by_internal.setdefault(row["row"].model_name, []).append(row)
    return render_template("dashboard/aliases/index.html", team=g.team,
                           table=teams.model_table(g.team), by_internal=by_internal,
                           keys=_team_keys(team_id), aliases=g.team.aliases)


@bp.get("/teams/<team_id>/aliases/resolve")
@access(TEAM_MEMBER)
def alias_resolve(team_id):
    name = request.args.get("name", "").strip()
    token = request.args.get("key", "")
    key = next((k for k in _team_keys(team_id) if k.token == token), None)
    result = explain(team_id, name, key) if name else None
    template = ("dashboard/aliases/_resolution.html" if request.htmx
                else "dashboard/aliases/resolve.html")
    return render_template(template, team=g.team, name=name, key=key, result=result,
                           keys=_team_keys(team_id))

