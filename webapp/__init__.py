"""Teamgate: a self-hosted, LiteLLM-compatible gateway for teams that bring their own models."""
import os
from pathlib import Path

from flask import Flask

from webapp import commands, config, database, errors
from webapp.extensions import csrf, db, htmx, login_manager, migrate
from webapp.proxy.forwarding import new_client
from webapp.services import cache, limits, metrics, request_log, response_store

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict | None = None) -> Flask:
    instance = os.environ.get("TEAMGATE_INSTANCE_PATH") or str(ROOT / "instance")
    app = Flask(__name__, instance_path=os.path.abspath(instance),
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    config.load(app, overrides)
    register_extensions(app)
    register_blueprints(app)
    errors.init_app(app)
    commands.init_app(app)
    app.after_request(no_sniffing)
    return app


def no_sniffing(response):
    """Every answer, JSON ones included (API, proxy, errors, which echo a caller's text), is
    read as its declared type only, never sniffed into HTML or script."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def register_extensions(app: Flask):
    database.init_app(app)  # engine options must be set before the engine is made
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    cache.init_app(app)
    request_log.init_app(app)
    limits.init_app(app)
    response_store.init_app(app)
    metrics.init_app(app)
    app.extensions["teamgate.http"] = new_client(app.config)


def register_blueprints(app: Flask):
    from webapp import dashboard
    from webapp.api import bp as api_bp
    from webapp.auth.views import bp as auth_bp
    from webapp.proxy.routes import bp as proxy_bp

    # the Bearer-key routes never read cookies, so CSRF does not apply to them
    for blueprint in (api_bp, proxy_bp):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    # the dashboard's blueprints use cookies, so CSRFProtect checks their state changes
    for blueprint in (dashboard.root, auth_bp, dashboard.bp):
        app.register_blueprint(blueprint)
    dashboard.init_app(app)
