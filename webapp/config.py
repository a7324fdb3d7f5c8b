"""Configuration: defaults here, the environment read only when the app is created."""
import os
import secrets
from pathlib import Path


class Defaults:
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024  # a vision call carries its images inline (base64)
    # an upload (audio to transcribe) is passed on as it arrives, never held whole in memory
    MAX_UPLOAD_BYTES = 26 * 1024 * 1024  # OpenAI's own limit is 25 MB
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
    # the most an upstream's answer may make a worker hold, in bytes
    UPSTREAM_MAX_HEAD_BYTES = 64 * 1024
    UPSTREAM_MAX_BODY_BYTES = 64 * 1024 * 1024  # a large embeddings batch fits
    UPSTREAM_MAX_SSE_LINE_BYTES = 8 * 1024 * 1024
    UPSTREAM_CA_FILE = ""  # authorities trusted besides the system's (an internal CA)
    EGRESS_PROXY = ""  # http://host:port: upstream connections as CONNECT tunnels through it
    # (host, port) pairs this Teamgate serves on, set by whoever starts the server
    # (gunicorn.conf.py, the tests' live server); an api_base at one of them is refused
    TEAMGATE_LISTEN = ()
    # limit counters: a SQLite file all workers share, or Redis when REDIS_URL is set
    REDIS_URL = None
    LIMITS_DB = None  # <instance>/limits.db
    LIMITS_ON_REDIS_FAILURE = "open"  # or "closed": refuse calls while Redis does not answer
    LIMITS_SLOT_SECONDS = 900.0  # a parallel slot nobody gave back (crashed worker) expires
    LIMITS_REDIS_TIMEOUT = 0.5  # seconds to connect to Redis or wait for its answer
    BUDGET_CHECK_INTERVAL = 1.0  # seconds a process reuses a subject's spend for budget checks
    TEAMGATE_ALERT_WEBHOOK = ""  # soft-budget alerts are POSTed here (JSON) when set
    # dashboard logins (docs/security.md): password checks waiting or running in one process,
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
    # Responses API (docs/proxy.md, Responses API): how long Teamgate can find a response by id (the
    # deployment that made it; for chat-only deployments the conversation it keeps), and the
    # most one kept conversation may hold, in bytes of JSON
    RESPONSES_TTL = 24 * 3600
    RESPONSES_MAX_BYTES = 4 * 1024 * 1024


# environment variable -> config key
ENVIRONMENT = {
    "TEAMGATE_MASTER_KEY": "TEAMGATE_MASTER_KEY",
    "TEAMGATE_ENCRYPTION_KEY": "TEAMGATE_ENCRYPTION_KEY",
    "TEAMGATE_SECRET_KEY": "SECRET_KEY",
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "TEAMGATE_UPSTREAM_ALLOW": "TEAMGATE_UPSTREAM_ALLOW",
    "TEAMGATE_REQUEST_LOG_SPOOL": "REQUEST_LOG_SPOOL_DIR",
    "TEAMGATE_UPSTREAM_CA_FILE": "UPSTREAM_CA_FILE",
    "TEAMGATE_EGRESS_PROXY": "EGRESS_PROXY",
    "REDIS_URL": "REDIS_URL",
    "TEAMGATE_LIMITS_DB": "LIMITS_DB",
    "TEAMGATE_LIMITS_ON_REDIS_FAILURE": "LIMITS_ON_REDIS_FAILURE",
    "TEAMGATE_ALERT_WEBHOOK": "TEAMGATE_ALERT_WEBHOOK",
}
# environment variable -> (config key, how its text becomes the value)
NUMBERS = {
    "TEAMGATE_MAX_BODY_MB": ("MAX_CONTENT_LENGTH", lambda text: _mebibytes(text)),
    "TEAMGATE_MAX_UPLOAD_MB": ("MAX_UPLOAD_BYTES", lambda text: _mebibytes(text)),
    "TEAMGATE_REQUEST_LOG_MEMORY_ROWS": ("REQUEST_LOG_MEMORY_ROWS", int),
    "TEAMGATE_REQUEST_LOG_LOCK_WAIT": ("REQUEST_LOG_LOCK_WAIT", float),
    "TEAMGATE_REQUEST_LOG_RETRY_SECONDS": ("REQUEST_LOG_RETRY_SECONDS", float),
    "TEAMGATE_UPSTREAM_MAX_HEAD_BYTES": ("UPSTREAM_MAX_HEAD_BYTES", lambda text: _whole(text)),
    "TEAMGATE_UPSTREAM_MAX_BODY_BYTES": ("UPSTREAM_MAX_BODY_BYTES", lambda text: _whole(text)),
    "TEAMGATE_UPSTREAM_MAX_SSE_LINE_BYTES": ("UPSTREAM_MAX_SSE_LINE_BYTES",
                                             lambda text: _whole(text)),
    "TEAMGATE_LIMITS_SLOT_SECONDS": ("LIMITS_SLOT_SECONDS", float),
    "TEAMGATE_LIMITS_REDIS_TIMEOUT": ("LIMITS_REDIS_TIMEOUT", float),
    "TEAMGATE_BUDGET_CHECK_INTERVAL": ("BUDGET_CHECK_INTERVAL", float),
    "TEAMGATE_LOGIN_MAX_PENDING": ("LOGIN_MAX_PENDING", lambda text: _whole(text)),
    "TEAMGATE_LOGIN_ADDRESS_FAILURES": ("LOGIN_ADDRESS_FAILURES", lambda text: _whole(text)),
    "TEAMGATE_RESPONSES_TTL": ("RESPONSES_TTL", lambda text: _whole(text)),
    "TEAMGATE_RESPONSES_MAX_BYTES": ("RESPONSES_MAX_BYTES", lambda text: _whole(text)),
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
                raise ValueError(f"{env_name} must be a number above zero, not "
                                 f"{os.environ[env_name]!r}") from None
    for key, filename in INSTANCE_FILES.items():
        path = Path(app.instance_path) / filename
        if not app.config.get(key) and path.exists():
            app.config[key] = path.read_text().strip()
    # behind HTTPS the session cookie must never travel over plain HTTP
    if os.environ.get("TEAMGATE_HTTPS", "").lower() in ("1", "true", "yes"):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config.update(overrides or {})
    # names this Teamgate in the hop header of its upstream calls (webapp/proxy/hops.py);
    # gunicorn.conf.py gives all workers of one server the same one
    app.config.setdefault("TEAMGATE_INSTANCE_ID", secrets.token_hex(8))
    if app.config["LIMITS_ON_REDIS_FAILURE"] not in ("open", "closed"):
        raise ValueError("TEAMGATE_LIMITS_ON_REDIS_FAILURE must be open or closed, not "
                         f"{app.config['LIMITS_ON_REDIS_FAILURE']!r}")


def _whole(text: str) -> int:
    """A whole number above zero, or ValueError."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(text)
    return int(text)


def _mebibytes(text: str) -> int:
    """A size in MiB (12, 0.5) as bytes, above zero, or ValueError: a limit of 0 would refuse
    every body, and `inf` would be no limit at all."""
    size = float(text)
    if not (0 < size < 1024 * 1024):
        raise ValueError(text)
    return max(int(size * 1024 * 1024), 1)
