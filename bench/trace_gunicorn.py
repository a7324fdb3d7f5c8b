"""gunicorn settings for bench/clients.py: Teamgate's own gunicorn.conf.py, unchanged, plus each
worker noting when it finished every request (time.monotonic, the same clock in every process
on Linux), written to $TRACE_DIR/ends-<pid>.json when the worker exits."""
import json
import os
import time
from pathlib import Path

_settings = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
exec(compile(_settings.read_text(), str(_settings), "exec"))

_ends: list[float] = []
_teamgate_post_request = post_request  # noqa: F821 (defined by the exec above)
_teamgate_worker_exit = worker_exit  # noqa: F821


def post_request(worker, req, environ, resp):
    _teamgate_post_request(worker, req, environ, resp)
    _ends.append(time.monotonic())


def worker_exit(server, worker):
    _teamgate_worker_exit(server, worker)
    path = Path(os.environ["TRACE_DIR"]) / f"ends-{os.getpid()}.json"
    path.write_text(json.dumps(_ends))
