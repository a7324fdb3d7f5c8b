"""Sending one prepared call upstream through the process's pooled session, with bounded retries
inside the deadline. Redirects are never followed; the environment's proxies and .netrc are not
consulted (trust_env off), so no ambient credential ever reaches an upstream.

The request goes straight to the session's transport adapter: `Session.request` would merge
settings, cookies and hooks on every call (a fifth of a call's CPU in profiles), none of which
apply here, and a shared cookie jar would carry one team's upstream cookies into another's call."""
import json
import random
import time
from dataclasses import dataclass

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from webapp.proxy import failures
from webapp.proxy.providers.base import PreparedCall, Target
from webapp.services.egress import CheckedConnection


@dataclass
class Sent:
    response: requests.Response
    upstream_seconds: float  # time until the upstream's status line and headers arrived


class _OneWrite:
    """Sends a request's headers and body in one write: urllib3 sends them separately, and on
    loopback the second syscall costs 75-90 us of CPU per call (bench/PROFILE.md)."""
    _holding = False
    _held: bytes | None = None

    def endheaders(self, message_body=None, *, encode_chunked=False):
        if self.sock is None:
            self.connect()  # connection errors surface where they always did
        self._holding = True
        super().endheaders(message_body, encode_chunked=encode_chunked)

    def send(self, data):
        if self._holding:  # the header block: wait for the body
            self._holding, self._held = False, data
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        super().send(data)

    def getresponse(self):
        if self._held is not None:  # a request without a body
            data, self._held = self._held, None
            super().send(data)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = type("Connection", (_OneWrite, CheckedConnection, HTTPConnection), {})


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = type("Connection", (_OneWrite, CheckedConnection, HTTPSConnection), {})


class _Adapter(HTTPAdapter):
    """Connections that pass the egress check when they open, and write each request once."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = 0
    adapter = _Adapter(pool_connections=32, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def http_session() -> requests.Session:
    return current_app.extensions["teamgate.http"]


def _prepared(session: requests.Session, call: PreparedCall) -> requests.PreparedRequest:
    try:
        body = json.dumps(call.body, allow_nan=False).encode()
    except ValueError as exc:  # NaN or Infinity: what Session.request would raise
        raise requests.exceptions.InvalidJSONError(exc) from None
    prepared = requests.PreparedRequest()
    prepared.method = "POST"
    prepared.url = call.url
    prepared.headers = CaseInsensitiveDict(session.headers)
    prepared.headers.update(call.headers)
    prepared.headers["Content-Type"] = "application/json"
    prepared.headers["Content-Length"] = str(len(body))
    prepared.body = body
    return prepared


def _post(session: requests.Session, call: PreparedCall, timeout: tuple,
          stream: bool) -> requests.Response:
    request = _prepared(session, call)
    adapter = session.get_adapter(call.url)
    response = adapter.send(request, stream=stream, timeout=timeout, verify=True, cert=None,
                            proxies={})
    if not stream:
        response.content  # read the whole body now, as Session.send does  # noqa: B018
    return response


def _timeouts(target: Target, stream: bool) -> tuple[float, float]:
    config = current_app.config
    read = (target.stream_timeout if stream else target.timeout) or (
        config["STREAM_IDLE_TIMEOUT"] if stream else config["UPSTREAM_TIMEOUT"])
    return min(config["UPSTREAM_CONNECT_TIMEOUT"], read), read


def _backoff(attempt: int) -> float:
    return min(2.0, 0.1 * 2 ** attempt) * (0.5 + random.random() / 2)


def _safe_to_retry(exc: requests.RequestException) -> bool:
    """Only failures that happened before the request reached the upstream."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        reason = str(exc.args[0]) if exc.args else ""
        return "NewConnectionError" in reason or "Connection refused" in reason
    return False


def send(call: PreparedCall, target: Target, stream: bool) -> Sent:
    """The upstream's successful response, or an APIError from the failure table."""
    connect, read = _timeouts(target, stream)
    max_retries = target.max_retries if target.max_retries is not None else \
        current_app.config["UPSTREAM_MAX_RETRIES"]
    deadline = time.monotonic() + connect + read
    session = http_session()
    attempt = 0
    while True:
        started = time.perf_counter()
        try:
            response = _post(session, call, (connect, read), stream)
        except requests.RequestException as exc:
            error = failures.from_exception(exc)
            if not _safe_to_retry(exc) or attempt >= max_retries:
                raise error from None
        else:
            elapsed = time.perf_counter() - started
            if response.status_code < 300:
                return Sent(response, elapsed)
            error = failures.from_status(response, target.api_key)
            retryable = failures.is_retryable(response)
            response.close()
            if not retryable or attempt >= max_retries:
                raise error
        wait = _backoff(attempt)
        if time.monotonic() + wait >= deadline:
            raise error
        time.sleep(wait)
        attempt += 1
