"""Starting and seeding what the benchmark measures: the fake upstream, Teamgate as `make run`
serves it (gunicorn with gunicorn.conf.py, SQLite, team key, team model, request log on), and
the LiteLLM proxy from its own virtual environment."""
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TEAMGATE_PYTHON = os.environ.get("TEAMGATE_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
LITELLM_VENV = BENCH / ".venv-litellm"
MASTER_KEY = "sk-bench-master-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def post(url: str, body: dict, key: str) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL
    process: subprocess.Popen | None = None
    key: str = ""
    fast_model: str = "bench-fast"
    slow_model: str = "bench-slow"
    other_key: str = ""
    other_model: str = "bench-fast"
    health_url: str = ""
    dashboard_url: str = ""  # a logged-in dashboard page, probed during the slow streams
    dashboard_cookie: str = ""
    extra: dict = field(default_factory=dict)

    def tree(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_upstream(python: str, processes: int) -> Target:
    port = free_port()
    process = subprocess.Popen([python, str(BENCH / "upstream.py"), str(port), str(processes)],
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/v1/models")
    return Target("direct", base + "/v1/chat/completions", process, fast_model="bench-fast",
                  slow_model="bench-slow", health_url=base + "/v1/models",
                  extra={"api_base": base + "/v1"})


def teamgate_environment(workdir: Path) -> dict:
    encryption_key = subprocess.run(
        [TEAMGATE_PYTHON, "-c", "from webapp.crypto import new_encryption_key as k; print(k())"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    return {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'teamgate.db'}",
            "TEAMGATE_MASTER_KEY": MASTER_KEY, "TEAMGATE_ENCRYPTION_KEY": encryption_key,
            "TEAMGATE_SECRET_KEY": "bench-secret", "TEAMGATE_UPSTREAM_ALLOW": "127.0.0.1/32"}


DASHBOARD_USER = ("bench-admin@example.com", "bench-password-0123456789")


def dashboard_login(base: str) -> str:
    """Log in through the login form (with its CSRF token); the session's Cookie header value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/ui/login", timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "email": DASHBOARD_USER[0],
                                   "password": DASHBOARD_USER[1]}).encode()
    with opener.open(base + "/ui/login", form, timeout=10) as response:
        if "/ui/login" in response.url:
            raise RuntimeError("dashboard login failed")
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


# the caller's key limits in the limited runs: counted on every call, never reached; the
# budget is checked on every call and spent on (the models are priced in those runs)
BENCH_LIMITS = {"rpm_limit": 100_000_000, "tpm_limit": 10**12, "max_budget": 10.0**9,
                "budget_duration": "30d"}
BENCH_PRICES = {"input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015}


def start_teamgate(workdir: Path, api_base: str, log, config: str = "gunicorn.conf.py",
                   env: dict | None = None, limits: dict | None = None) -> Target:
    """`config` and `env` (added to the environment) let bench tools start it instrumented;
    `limits` go on the measured caller's key."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**teamgate_environment(workdir), "TEAMGATE_INSTANCE_PATH": str(workdir),
           **(env or {})}
    flask = str(Path(TEAMGATE_PYTHON).parent / "flask")
    subprocess.run([flask, "--app", "wsgi", "setup"], cwd=ROOT, env=env, check=True,
                   stdout=log, stderr=log)
    port = free_port()
    gunicorn = str(Path(TEAMGATE_PYTHON).parent / "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "--config", config, "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health/liveliness")
    target = Target("teamgate", base + "/v1/chat/completions", process,
                    health_url=base + "/health/readiness", extra={"db": workdir / "teamgate.db"})
    team_ids = []
    for team_alias, attr in (("bench-a", "key"), ("bench-b", "other_key")):
        team_id = post(base + "/team/new", {"team_alias": team_alias}, MASTER_KEY)["team_id"]
        team_ids.append(team_id)
        key = post(base + "/key/generate", {"team_id": team_id,
                                            **((limits or {}) if attr == "key" else {})},
                   MASTER_KEY)["key"]
        setattr(target, attr, key)
        for name in ("bench-fast", "bench-slow"):
            post(base + "/model/new", {
                "model_name": name,
                "litellm_params": {"model": f"openai/{name}", "api_base": api_base,
                                   "api_key": "sk-fake-upstream",
                                   **(BENCH_PRICES if limits else {})},
                "model_info": {"team_id": team_id}}, key)
    # the dashboard page probed beside the slow streams: a team's models, as its admin sees it
    subprocess.run([flask, "--app", "wsgi", "create-user", DASHBOARD_USER[0], "--password",
                    DASHBOARD_USER[1], "--team", team_ids[1], "--role", "admin"],
                   cwd=ROOT, env=env, check=True, stdout=log, stderr=log)
    target.extra["team_ids"] = team_ids  # bench-a (the measured caller's), bench-b
    target.dashboard_url = f"{base}/ui/teams/{team_ids[1]}/models"
    target.extra["team_ids"] = team_ids
    target.dashboard_cookie = dashboard_login(base)
    return target


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A redis-server of the benchmark's own (Debian's package), in memory only: (process, URL)."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


LITELLM_CONFIG = """\
model_list:
  - model_name: bench-fast
    litellm_params: {{model: openai/bench-fast, api_base: "{api_base}", api_key: sk-fake-upstream}}
  - model_name: bench-slow
    litellm_params: {{model: openai/bench-slow, api_base: "{api_base}", api_key: sk-fake-upstream}}
litellm_settings:
  telemetry: false
  set_verbose: false
  json_logs: true
general_settings:
  master_key: {master_key}
"""


def start_litellm(workdir: Path, api_base: str, log) -> Target:
    config = workdir / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(api_base=api_base, master_key=MASTER_KEY))
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True"}
    process = subprocess.Popen(
        [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
         "--port", str(port), "--num_workers", "2"],
        cwd=workdir, env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health/liveliness", seconds=180)
    # LiteLLM without a database has no teams: the master key stands for both callers
    return Target("litellm", base + "/v1/chat/completions", process, key=MASTER_KEY,
                  other_key=MASTER_KEY, health_url=base + "/health/liveliness")
