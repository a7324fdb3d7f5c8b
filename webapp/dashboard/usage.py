"""Usage of a team, drawn as server-rendered SVG from the request log (no script, nothing fetched
from elsewhere), with its money and a CSV export; the numbers come from services/usage.py and
services/spend.py."""
from flask import Response, g, render_template, request

from webapp.auth.dashboard_access import TEAM_MEMBER, access
from webapp.dashboard import bp
from webapp.services import spend
from webapp.services import usage as team_usage


def budget_banner(team) -> str | None:
    """The warning a team's pages show once its spend reached its soft or max budget."""
    limits, current = team.limits or {}, spend.of("team", team.id)
    if limits.get("max_budget") is not None and current >= limits["max_budget"]:
        return (f"This team's budget is spent: ${current:.4f} of ${limits['max_budget']:.2f}; "
                "calls are refused until it resets or is raised.")
    if limits.get("soft_budget") is not None and current >= limits["soft_budget"]:
        return (f"This team has spent ${current:.4f}, past its soft budget of "
                f"${limits['soft_budget']:.2f}.")
    return None


@bp.get("/teams/<team_id>/usage")
@access(TEAM_MEMBER)
def usage(team_id):
    result = team_usage.for_team(team_id, request.args.get("period", team_usage.DEFAULT_PERIOD))
    return render_template(
        "dashboard/usage/index.html", team=g.team, period=result.period,
        periods=list(team_usage.PERIODS), series=result.series, peak=result.peak,
        per_model=result.per_model, per_key=result.per_key, spent=spend.for_team(team_id),
        banner=budget_banner(g.team))


@bp.get("/teams/<team_id>/usage.csv")
@access(TEAM_MEMBER)
def usage_csv(team_id):
    period = request.args.get("period", team_usage.DEFAULT_PERIOD)
    if period not in team_usage.PERIODS:
        period = team_usage.DEFAULT_PERIOD
    return Response(team_usage.csv_for_team(team_id, period), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="usage-{period}.csv"'})
