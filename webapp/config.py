"""Configuration: defaults here, the environment read only when the app is created."""
import os
from pathlib import Path


class Defaults:
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024  # a vision call carries its images inline (base64)
    MAX_JSON_DEPTH = 32
    MAX_MESSAGES = 2048
    UPSTREAM_TIMEOUT = 600.0
    UPSTREAM_CONNECT_TIMEOUT = 10.0
    STREAM_IDLE_TIMEOUT = 120.0
    UPSTREAM_MAX_RETRIES = 2
    UPSTREAM_POOL_SIZE = 64
    CACHE_CHECK_INTERVAL = 0.5
    WTF_CSRF_TIME_LIMIT = None
    TEAMGATE_UPSTREAM_ALLOW = ""
    # request-log rows held in memory while the database refuses writes; more go to the spool
    REQUEST_LOG_MEMORY_ROWS = 10_000
    REQUEST_LOG_SPOOL_DIR = None  # <instance>/request-log-spool
    REQUEST_LOG_LOCK_WAIT = 1.0  # seconds one write waits for a locked database
    REQUEST_LOG_RETRY_SECONDS = 1.0  # between attempts while the database refuses
    BUDGET_CHECK_INTERVAL = 1.0  # seconds a process reuses a subject's spend for budget checks
    TEAMGATE_ALERT_WEBHOOK = ""  # soft-budget alerts are POSTed here (JSON) when set


# environment variable -> config key
ENVIRONMENT = {
    "TEAMGATE_MASTER_KEY": "TEAMGATE_MASTER_KEY",
    "TEAMGATE_ENCRYPTION_KEY": "TEAMGATE_ENCRYPTION_KEY",
    "TEAMGATE_SECRET_KEY": "SECRET_KEY",
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "TEAMGATE_UPSTREAM_ALLOW": "TEAMGATE_UPSTREAM_ALLOW",
    "TEAMGATE_REQUEST_LOG_SPOOL": "REQUEST_LOG_SPOOL_DIR",
    "TEAMGATE_ALERT_WEBHOOK": "TEAMGATE_ALERT_WEBHOOK",
}
# environment variable -> (config key, how its text becomes the value)
NUMBERS = {
    "TEAMGATE_MAX_BODY_MB": ("MAX_CONTENT_LENGTH", lambda text: int(float(text) * 1024 * 1024)),
    "TEAMGATE_REQUEST_LOG_MEMORY_ROWS": ("REQUEST_LOG_MEMORY_ROWS", int),
    "TEAMGATE_REQUEST_LOG_LOCK_WAIT": ("REQUEST_LOG_LOCK_WAIT", float),
    "TEAMGATE_REQUEST_LOG_RETRY_SECONDS": ("REQUEST_LOG_RETRY_SECONDS", float),
    "TEAMGATE_BUDGET_CHECK_INTERVAL": ("BUDGET_CHECK_INTERVAL", float),
}

# secrets kept in the instance folder when the environment does not give them
INSTANCE_FILES = {
    "TEAMGATE_MASTER_KEY": "master.key",
    "TEAMGATE_ENCRYPTION_KEY": "encryption.key",
    "SECRET_KEY": "secret.key",
}


def load(app, overrides=None):
    Path(app.instance_path).mkdir(exist_ok=True)
    app.config.from_object(Defaults)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(
        Path(app.instance_path) / "teamgate.db"
    )
    for env_name, key in ENVIRONMENT.items():
        if os.environ.get(env_name):
            app.config[key] = os.environ[env_name]
    for env_name, (key, parse) in NUMBERS.items():
        if os.environ.get(env_name):
            try:
                app.config[key] = parse(os.environ[env_name])
            except ValueError:
                raise SystemExit(f"{env_name} must be a number, not {os.environ[env_name]!r}")
    for key, filename in INSTANCE_FILES.items():
        path = Path(app.instance_path) / filename
        if not app.config.get(key) and path.exists():
            app.config[key] = path.read_text().strip()
    # behind HTTPS the session cookie must never travel over plain HTTP
    if os.environ.get("TEAMGATE_HTTPS", "").lower() in ("1", "true", "yes"):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config.update(overrides or {})
