"""Configuration: defaults here, the environment read only when the app is created."""
import os
from pathlib import Path


class Defaults:
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = 4 * 1024 * 1024
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
    # dashboard logins (README, Security): password checks waiting or running in one process,
    # beyond which a login is refused at once; failed logins per client address, and per address
    # and email, within LOGIN_WINDOW seconds, counted in the database (LOGIN_MAX_KEYS rows at
    # most, expired ones pruned every LOGIN_PRUNE_INTERVAL seconds by each process)
    LOGIN_MAX_PENDING = 8
    LOGIN_WINDOW = 300
    LOGIN_ADDRESS_FAILURES = 30
    LOGIN_EMAIL_FAILURES = 5
    LOGIN_MAX_KEYS = 10_000
    LOGIN_PRUNE_INTERVAL = 60
    # a refused login's connection reads its next request one to two times this many seconds
    # later (gevent workers): a client looping on refusals cannot keep a worker busy
    LOGIN_REFUSED_HOLD = 1.0


# environment variable -> config key
ENVIRONMENT = {
    "TEAMGATE_MASTER_KEY": "TEAMGATE_MASTER_KEY",
    "TEAMGATE_ENCRYPTION_KEY": "TEAMGATE_ENCRYPTION_KEY",
    "TEAMGATE_SECRET_KEY": "SECRET_KEY",
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "TEAMGATE_UPSTREAM_ALLOW": "TEAMGATE_UPSTREAM_ALLOW",
}

# environment variable -> config key holding a whole number
NUMBERS = {
    "TEAMGATE_LOGIN_MAX_PENDING": "LOGIN_MAX_PENDING",
    "TEAMGATE_LOGIN_ADDRESS_FAILURES": "LOGIN_ADDRESS_FAILURES",
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
    for env_name, key in NUMBERS.items():
        if os.environ.get(env_name):
            app.config[key] = int(os.environ[env_name])
    for key, filename in INSTANCE_FILES.items():
        path = Path(app.instance_path) / filename
        if not app.config.get(key) and path.exists():
            app.config[key] = path.read_text().strip()
    # behind HTTPS the session cookie must never travel over plain HTTP
    if os.environ.get("TEAMGATE_HTTPS", "").lower() in ("1", "true", "yes"):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config.update(overrides or {})
