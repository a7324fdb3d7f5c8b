"""Gunicorn settings for `make run`; the environment can override them (WORKERS, THREADS)."""
import os

worker_class = "gthread"
workers = int(os.environ.get("WORKERS", "2"))
threads = int(os.environ.get("THREADS", "32"))
timeout = 0  # long streams are normal; the gateway has its own upstream timeouts
graceful_timeout = 30
keepalive = 5
accesslog = None
