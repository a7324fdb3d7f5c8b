"""The playground: chat with one of the team's models through the proxy's own call path; the
answer streams back to a small script as server-sent events."""
from flask import g, render_template

from webapp.dashboard import bp
from webapp.auth.dashboard_access import TEAM_MEMBER, access
from webapp.proxy import calls
from webapp.services import resolver


@bp.get("/teams/<team_id>/playground")
@access(TEAM_MEMBER)
def playground(team_id):
    return render_template("dashboard/playground/index.html", team=g.team,
                           names=resolver.callable_names(g.principal))


@bp.post("/teams/<team_id>/playground/chat")
@access(TEAM_MEMBER)
def playground_chat(team_id):
    # g.principal acts inside this team: the proxy resolves names as a key of the team would
    return calls.handle("chat")
