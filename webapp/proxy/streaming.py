"""Relaying an upstream's server-sent events to the caller as they arrive, one whole event at a
time: an event is relayed as soon as the blank line that ends it arrives (a client can act on
nothing sooner), with the team's key masked in it (webapp/proxy/masking.py). Status and headers
are decided before the first byte; a failure after it becomes one `data: {"error": ...}` event.
Closing the generator (the client went away) closes the upstream.

Every step is linear in the bytes of its event; the answer's lines come from
transport.Answer.lines()."""
import json

from webapp.errors import APIError
from webapp.proxy import failures, masking, transport
from webapp.proxy.providers.base import Target

DONE = b"data: [DONE]"
# lines without a blank line between them (not SSE) are relayed in blocks of about this size
EVENT_LIMIT = 64 * 1024


def _error_event(error: APIError) -> bytes:
    return b"data: " + json.dumps(error.body()).encode() + b"\n\n"


def _usage_from(event: bytes, record):
    """Token counts from the event carrying `usage` (sent when the client asks for it)."""
    for line in event.split(b"\n"):
        if b'"usage"' in line and line.startswith(b"data:"):
            try:
                usage = json.loads(line[5:]).get("usage")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(usage, dict):
                record.prompt_tokens = usage.get("prompt_tokens")
                record.completion_tokens = usage.get("completion_tokens")


def _events(lines):
    """An OpenAI-compatible upstream's events: its lines up to each blank line, as sent."""
    event, size = [], 0
    for line in lines:
        if line:
            event.append(line)
            size += len(line)
            if size < EVENT_LIMIT:
                continue
        if event:
            yield (event[0] if len(event) == 1 else b"\n".join(event)) + b"\n\n"
            event, size = [], 0
    if event:  # the upstream ended without the blank line after its last event
        yield b"\n".join(event) + b"\n\n"


def _translated(response: transport.Answer, target: Target):
    for line in response.lines():
        out = target.provider.translate_stream_line(line)
        if out is not None:
            yield out + b"\n\n"


def relay(response: transport.Answer, target: Target, record):
    status, error_type, last = 200, None, b""
    events = (_events(response.lines()) if target.provider.stream_passthrough
              else _translated(response, target))
    secret = masking.Secret.of(target.api_key)
    try:
        for event in events:
            event = masking.event(secret, event)
            if b'"usage"' in event:
                _usage_from(event, record)
            last = event
            yield event
        if not last.startswith(DONE):
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
