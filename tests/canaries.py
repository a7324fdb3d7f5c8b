"""Canary secrets: a pytest plugin that watches everything Teamgate emits during the suite.

Every response (test client and live servers alike: Flask.wsgi_app is wrapped), every log record
at DEBUG, every request a fake upstream receives and every database column touched by a test is
scanned after each test for the master key, the ambient OPENAI_API_KEY, provider keys that were
sent in, and virtual keys after the one response that issued them. A leak fails the test."""
import json
import logging
import re
import threading

import pytest
from flask import Flask
from sqlalchemy import inspect, select

from tests.conftest import AMBIENT_OPENAI_KEY, MASTER_KEY
from tests.fake_upstream import FakeUpstream

# columns where a provider key may live, and only as ciphertext
ENCRYPTED_COLUMNS = {("deployments", "secrets"),  # a JSON object: field name -> ciphertext
                     ("provider_credentials", "secret_encrypted")}
CIPHERTEXT_PREFIX = "v1."
PROVIDER_KEY_PATTERN = re.compile(r"sk-provider-[A-Za-z0-9_-]+")
VIRTUAL_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_-]{40,}")
SECRET_FIELDS = ("api_key", "secret", "provider_key", "key_value")


class Watch:
    """What was emitted during the current test, and the secrets known so far."""

    def __init__(self):
        self.lock = threading.Lock()
        self.responses: list[tuple[str, str]] = []  # (where, text)
        self.logs: list[str] = []
        self.apps: list[Flask] = []
        self.upstreams: list[FakeUpstream] = []
        self.provider_keys: set[str] = set()
        self.virtual_keys: set[str] = set()

    def reset(self):
        with self.lock:
            self.responses, self.logs, self.apps, self.upstreams = [], [], [], []

    def learn_from_request(self, raw: bytes):
        text = raw.decode("utf-8", "replace")
        found = set(PROVIDER_KEY_PATTERN.findall(text))
        try:
            found |= set(_secret_values(json.loads(text)))
        except (ValueError, RecursionError):
            pass
        for field in SECRET_FIELDS:  # dashboard forms
            found |= {m for m in re.findall(rf"(?:^|&){field}=([^&]{{12,}})", text)}
        with self.lock:
            # a URL sent in a secret's field is a test of that mistake, not a key: kept, it would
            # "leak" wherever a later upstream on the same port is the api_base
            self.provider_keys |= {f for f in found if len(f) >= 12 and "://" not in f}

    def record_response(self, where: str, text: str):
        issued = set(VIRTUAL_KEY_PATTERN.findall(text)) - {MASTER_KEY}
        with self.lock:
            fresh = issued - self.virtual_keys
            self.virtual_keys |= issued
            # a virtual key may appear once: in the response that issued it
            self.responses.append((where, _without(text, fresh)))


def _secret_values(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_FIELDS and isinstance(item, str):
                yield item
            else:
                yield from _secret_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item)


def _without(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<issued key>")
    return text


WATCH = Watch()


def _wrapped_wsgi_app(original):
    def wsgi_app(self, environ, start_response):
        with WATCH.lock:
            if self not in WATCH.apps:
                WATCH.apps.append(self)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if 0 < length <= 1024 * 1024:
            import io
            raw = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(raw)
            WATCH.learn_from_request(raw)
        head = []

        def recording_start_response(status, headers, exc_info=None):
            head.append(status + "\n" + "\n".join(f"{k}: {v}" for k, v in headers))
            return start_response(status, headers, exc_info)

        where = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        body = []
        iterable = original(self, environ, recording_start_response)
        try:
            for chunk in iterable:
                body.append(chunk)
                yield chunk
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
            WATCH.record_response(where, "\n".join(head) + "\n\n"
                                  + b"".join(body).decode("utf-8", "replace"))

    return wsgi_app


class CapturingHandler(logging.Handler):
    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is still a record we must scan
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        with WATCH.lock:
            WATCH.logs.append(f"{record.name}: {text}")


def _wrapped_upstream_init(original):
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        with WATCH.lock:
            WATCH.upstreams.append(self)

    return __init__


HANDLER = CapturingHandler(level=logging.DEBUG)


def _capture_logs():
    """Attach the handler at DEBUG (again: logging.config.fileConfig, as Alembic's env.py
    calls it, replaces the root logger's handlers)."""
    root = logging.getLogger()
    if HANDLER not in root.handlers:
        root.addHandler(HANDLER)
    root.setLevel(logging.DEBUG)


def pytest_configure(config):
    Flask.wsgi_app = _wrapped_wsgi_app(Flask.wsgi_app)
    FakeUpstream.__init__ = _wrapped_upstream_init(FakeUpstream.__init__)
    _capture_logs()


def database_findings(app: Flask, secrets: set[str]) -> list[str]:
    """Every column of every table, scanned; encrypted columns may hold only ciphertext."""
    from webapp.extensions import db

    findings = []
    with app.app_context():
        tables = inspect(db.engine).get_table_names()
        for table in tables:
            rows = db.session.execute(select(db.table(table, *[
                db.column(c["name"]) for c in inspect(db.engine).get_columns(table)])))
            for row in rows.mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = str(value)
                    if (table, column) in ENCRYPTED_COLUMNS:
                        sealed = json.loads(value).values() if isinstance(value, str) and \
                            value.startswith("{") else value.values() \
                            if isinstance(value, dict) else [value]
                        if not all(str(v).startswith(CIPHERTEXT_PREFIX) for v in sealed):
                            findings.append(f"{table}.{column} holds a non-ciphertext value")
                    for secret in secrets:
                        if secret in text:
                            findings.append(f"{table}.{column} holds a secret ending "
                                            f"{secret[-4:]}")
        db.session.remove()
        db.engine.dispose()  # the app's own teardown has run: close what the scan opened
    return findings


def findings_of_test() -> list[str]:
    with WATCH.lock:
        secrets = {MASTER_KEY, AMBIENT_OPENAI_KEY} | WATCH.provider_keys | WATCH.virtual_keys
        responses, logs = list(WATCH.responses), list(WATCH.logs)
        upstreams, apps = list(WATCH.upstreams), list(WATCH.apps)
        provider_keys = set(WATCH.provider_keys)
    findings = []
    for secret in secrets:
        tail = secret[-4:]
        findings += [f"response {where} carries a secret ending {tail}"
                     for where, text in responses if secret in text]
        findings += [f"log record carries a secret ending {tail}: {line[:80]}..."
                     for line in logs if secret in line]
    # provider keys are meant to reach the upstream; nothing else is
    upstream_secrets = secrets - provider_keys
    for upstream in upstreams:
        for received in upstream.received:
            text = json.dumps(received.headers) + json.dumps(received.body)
            findings += [f"upstream received a secret ending {s[-4:]}"
                         for s in upstream_secrets if s in text]
    if apps:
        findings += database_findings(apps[0], secrets)
    return sorted(set(findings))


@pytest.fixture(autouse=True)
def canary_scan(request):
    """After each test: no canary secret in any response, log record, upstream call or column."""
    _capture_logs()
    WATCH.reset()
    exempt = request.node.get_closest_marker("canary_exempt")
    known = set(WATCH.provider_keys)
    yield
    if exempt:
        # generated data is no secret: forget what this test taught the scanner
        WATCH.provider_keys = known
        WATCH.reset()
        return
    findings = findings_of_test()
    WATCH.reset()
    if findings:
        pytest.fail("canary secrets leaked:\n  " + "\n  ".join(findings), pytrace=False)


def pytest_sessionfinish(session):
    # the last test's teardown has already scanned; this keeps the registry honest for reruns
    WATCH.reset()
