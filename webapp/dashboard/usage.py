"""Usage of a team, drawn as server-rendered SVG from the request log (no script, nothing fetched
from elsewhere); the numbers come from services/usage.py."""
from flask import g, render_template, request

from webapp.auth.dashboard_access import TEAM_MEMBER, access
from webapp.dashboard import bp
from webapp.services import usage as team_usage


@bp.get("/teams/<team_id>/usage")
@access(TEAM_MEMBER)
def usage(team_id):
    result = team_usage.for_team(team_id, request.args.get("period", team_usage.DEFAULT_PERIOD))
    return render_template(
        "dashboard/usage/index.html", team=g.team, period=result.period,
        periods=list(team_usage.PERIODS), series=result.series, peak=result.peak,
        per_model=result.per_model, per_key=result.per_key)
