"""Relaying an upstream's server-sent events to the caller as they arrive, without buffering.
Status and headers are decided before the first byte; a failure after it becomes one
`data: {"error": ...}` event. Closing the generator (the client went away) closes the upstream."""
import json

from webapp.crypto import mask
from webapp.errors import APIError
from webapp.proxy import failures, transport
from webapp.providers.base import Target

DONE = b"data: [DONE]"


def _error_event(error: APIError) -> bytes:
    return b"data: " + json.dumps(error.body()).encode() + b"\n\n"


def _usage_from(chunk: bytes, record):
    """Token counts from the chunk carrying `usage` (sent when the client asks for it)."""
    for line in chunk.split(b"\n"):
        if b'"usage"' in line and line.startswith(b"data:"):
            try:
                usage = json.loads(line[5:]).get("usage") or {}
            except (ValueError, AttributeError):
                continue
            record.prompt_tokens = usage.get("prompt_tokens")
            record.completion_tokens = usage.get("completion_tokens")


def _translated(response: transport.Answer, target: Target):
    for line in response.lines():
        out = target.provider.translate_stream_line(line)
        if out is not None:
            yield out + b"\n\n"


def relay(response: transport.Answer, target: Target, record):
    status, error_type, tail = 200, None, b""
    chunks = (response.chunks() if target.provider.stream_passthrough
              else _translated(response, target))
    # a provider may echo the team's key in an error event: never relay it
    secret = target.api_key.encode() if target.api_key else None
    try:
        for chunk in chunks:
            if secret and secret in chunk:
                chunk = chunk.replace(secret, mask(target.api_key).encode())
            if b'"usage"' in chunk:
                _usage_from(chunk, record)
            tail = (tail + chunk)[-64:]
            yield chunk
        if DONE not in tail:
            yield DONE + b"\n\n"
    except transport.TransportError as exc:
        error = failures.from_exception(exc)
        status, error_type = error.status, error.error_type
        yield _error_event(error)
    except GeneratorExit:
        status, error_type = 499, "client_closed"
        raise
    finally:
        response.close()
        record.write(status, error_type)
