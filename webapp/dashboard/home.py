"""The landing page: the teams the user can open."""
from flask import g, render_template

from webapp.dashboard import bp
from webapp.auth.dashboard_access import USER, access
from webapp.services import teams


@bp.get("/")
@access(USER)
def home():
    return render_template("dashboard/home.html", teams=teams.visible(g.principal))
