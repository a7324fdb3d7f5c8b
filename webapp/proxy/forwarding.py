"""Sending one prepared call upstream through the process's pooled client, with bounded retries
inside the deadline. Only failures before the request reached the upstream are retried, and
statuses the failure table calls retryable, after the wait the upstream asks for (Retry-After)
or a jittered backoff. A caller that retries itself (an SDK's retry) is sent once: the two kinds
of retries add up rather than multiply (docs/proxy.md, Retries)."""
import hashlib
import json
import random
import time
from dataclasses import dataclass

from flask import current_app

from webapp.upstream import failures, masking, transport
from webapp.providers.base import PreparedCall, Target


@dataclass
class Sent:
    response: transport.Answer
    upstream_seconds: float  # time until the upstream's status line and headers arrived


def new_client(config) -> transport.Client:
    """The process's upstream client, made from the app's settings."""
    limits = transport.Limits(head=config["UPSTREAM_MAX_HEAD_BYTES"],
                              body=config["UPSTREAM_MAX_BODY_BYTES"],
                              line=config["UPSTREAM_MAX_SSE_LINE_BYTES"])
    return transport.Client(per_host=config["UPSTREAM_POOL_SIZE"], limits=limits,
                            ca_file=config["UPSTREAM_CA_FILE"], proxy=config["EGRESS_PROXY"])


def http_client() -> transport.Client:
    return current_app.extensions["teamgate.http"]


def _timeouts(target: Target, stream: bool) -> tuple[float, float]:
    config = current_app.config
    read = (target.stream_timeout if stream else target.timeout) or (
        config["STREAM_IDLE_TIMEOUT"] if stream else config["UPSTREAM_TIMEOUT"])
    return min(config["UPSTREAM_CONNECT_TIMEOUT"], read), read


def _pool_key(target: Target, headers: dict) -> bytes:
    """Whose connections a call may use: its team and credentials, hashed so that the pool
    never holds a secret; two teams never share a connection, even with the same key."""
    material = repr((target.team_id, headers)).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(material, digest_size=16).digest()


def _backoff(attempt: int) -> float:
    return min(2.0, 0.1 * 2 ** attempt) * (0.5 + random.random() / 2)


def caller_retrying(headers) -> bool:
    """Whether this call is a retry of the caller's own: the openai and anthropic SDKs count
    their attempts in x-stainless-retry-count (0 on the first)."""
    count = headers.get("x-stainless-retry-count", "")
    return count.isdigit() and count.strip("0") != ""


def _safe_to_retry(exc: transport.TransportError) -> bool:
    """Only failures that happened before the request reached the upstream."""
    return isinstance(exc, transport.ConnectTimedOut) or (
        isinstance(exc, transport.ConnectFailed) and not exc.sent)


def send(call: PreparedCall, target: Target, stream: bool) -> Sent:
    """The upstream's successful answer (read in full unless streamed), or an APIError from the
    failure table."""
    connect, read = _timeouts(target, stream)
    max_retries = target.max_retries if target.max_retries is not None else \
        current_app.config["UPSTREAM_MAX_RETRIES"]
    # the model's timeout bounds the whole call, retries included; for a stream, until its head
    deadline = time.monotonic() + read
    # a signed call (Bedrock) brings the exact bytes it signed
    client = http_client()
    # (or an upload passed on as it arrives: proxy/uploads.py); a call without a body (GET,
    # DELETE) sends none
    body = json.dumps(call.body).encode() if isinstance(call.body, dict) else (
        b"" if call.body is None else call.body)
    allow = current_app.config.get("TEAMGATE_UPSTREAM_ALLOW", "")
    pool_key = _pool_key(target, call.headers)
    attempt = 0
    while True:
        started = time.perf_counter()
        asked = None  # the wait the upstream asked for
        try:
            response = client.post(call.url, call.headers, body, connect, read, allow, pool_key,
                                   deadline, call.method)
            if not stream or response.status >= 300:
                response.content  # the whole answer: one that breaks off fails here  # noqa: B018
        except transport.TransportError as exc:
            error = failures.from_exception(exc)
            if not _safe_to_retry(exc) or attempt >= max_retries:
                raise error from None
        else:
            elapsed = time.perf_counter() - started
            if response.status < 300:
                if stream:  # from here only the idle timeout between chunks applies
                    response.deadline = None
                return Sent(response, elapsed)
            error = failures.from_status(response, masking.Secret.of(target))
            asked = failures.retry_after(response.headers)
            response.close()
            if not failures.is_retryable(response.status, asked) or attempt >= max_retries:
                raise error
        wait = _backoff(attempt) if asked is None else asked
        if time.monotonic() + wait >= deadline:  # the caller gets the upstream's answer now
            raise error
        time.sleep(wait)
        attempt += 1
