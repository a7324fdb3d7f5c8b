"""The browser dashboard: HTMX pages over the same services as the JSON API, under /ui."""
from flask import Blueprint, redirect, render_template, request, url_for

from webapp.auth.dashboard_access import PUBLIC, access
from webapp.auth.dashboard_paths import PREFIX, is_dashboard_path
from webapp.errors import APIError

bp = Blueprint("dashboard", __name__, url_prefix=PREFIX)
root = Blueprint("root", __name__)

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                           "base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# views that answer JSON or a stream to a script, so their errors stay JSON too
JSON_ENDPOINTS = ("dashboard.playground_chat",)


@root.get("/")
@access(PUBLIC)
def index():
    return redirect(url_for("dashboard.home"))


@bp.errorhandler(APIError)
def service_error(error: APIError):
    if request.endpoint in JSON_ENDPOINTS:
        return error.response()
    return render_template("dashboard/error.html", error=error), error.status


def security_headers(response):
    if response.mimetype == "text/html" or is_dashboard_path(request.path):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app):
    from webapp.auth import sessions

    sessions.init_app(app)
    app.after_request(security_headers)


from webapp.dashboard import (admin, aliases, audit, credentials, deployments,  # noqa: E402,F401
                              home, keys, members, playground, usage)
