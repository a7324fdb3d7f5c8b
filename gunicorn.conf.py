"""Gunicorn settings for `make run` (chosen by measurement: bench/RESULTS.md).

gevent workers: a call spends nearly all its time waiting on its upstream, and a stream can last
minutes, so each connection is a greenlet rather than a thread. gthread with 2 x 32 threads could
hold only 64 streams at once (the 65th caller waits), and with more threads the GIL hand-offs
between them cost more than the work. One worker per core. The environment can override these
(WORKER_CLASS, WORKERS, THREADS, WORKER_CONNECTIONS)."""
import gc
import os
import secrets
import shutil
import socket
import tempfile

worker_class = os.environ.get("WORKER_CLASS", "gevent")
workers = int(os.environ.get("WORKERS", str(os.cpu_count() or 2)))
threads = int(os.environ.get("THREADS", "32"))  # gthread only
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))  # gevent only
timeout = 0  # long streams are normal; the gateway has its own upstream timeouts
graceful_timeout = 30
keepalive = 5
accesslog = None

# made once in the master, so every worker of this server names the same Teamgate in its hop
# headers (webapp/proxy/hops.py): a call that loops back to another worker is still its own
INSTANCE_ID = secrets.token_hex(8)


def on_starting(server):
    """Prometheus in multiprocess mode: every worker writes its values to files in
    PROMETHEUS_MULTIPROC_DIR and /metrics sums them (webapp/services/metrics.py). Set before any
    worker starts, since prometheus_client reads it when it is imported. A directory given in
    the environment is emptied first (a previous run's counts would be summed in); without
    one, a fresh one is made and removed at exit."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))
    else:
        directory = tempfile.mkdtemp(prefix="teamgate-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        server.teamgate_metrics_dir = directory


def on_exit(server):
    made = getattr(server, "teamgate_metrics_dir", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


def child_exit(server, worker):
    """A worker that went: its live gauges leave the sums (its counters stay counted)."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """Write the request-log rows, kept responses and limit settlements still queued in this
    worker before it goes."""
    app = getattr(worker, "wsgi", None)
    for name in ("teamgate.request_log", "teamgate.responses", "teamgate.limits"):
        writer = getattr(app, "extensions", {}).get(name)
        if writer is not None:
            writer.stop()


def _introduce(worker):
    """Tell the app which Teamgate it is and where it listens, so that it refuses an api_base
    that leads back to itself."""
    config = getattr(worker.wsgi, "config", None)
    if config is None:  # the app failed to load; gunicorn serves its error page
        return
    config["TEAMGATE_INSTANCE_ID"] = INSTANCE_ID
    config["TEAMGATE_LISTEN"] = tuple(
        sock.getsockname()[:2] for sock in worker.sockets
        if sock.family in (socket.AF_INET, socket.AF_INET6))


def post_worker_init(worker):
    """gevent accepts up to 100 waiting connections per wake-up, so one worker can take a whole
    burst of clients while the other idles; accepting one at a time spreads them."""
    _introduce(worker)
    if worker_class == "gevent":
        from gevent.baseserver import BaseServer
        BaseServer.max_accept = 1
    # the app's modules, routes and metadata live as long as the worker: keep them out of every
    # full collection, which otherwise walks them all (60-80 ms per worker, bench/PROFILE.md)
    gc.freeze()


def post_request(worker, req, environ, resp):
    """gevent switches greenlets only when a socket would block. A keep-alive client whose next
    request is already waiting keeps its greenlet running from one request to the next while
    the worker's other connections wait (health route at 32 connections: p50 0.6 ms, p90 590 ms).
    Yielding after each request lets every ready connection take its turn."""
    if worker_class == "gevent":
        import gevent
        gevent.sleep(0)
