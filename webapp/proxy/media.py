"""Answers that need not be JSON (speech, transcriptions): audio relayed as it arrives, never
held whole; a transcript (JSON or text, small) read whole, its usage read and the key masked;
server-sent events (stream_format "sse", stream true) relayed as every other stream. A call
that asked for no stream has its answer read whole already (forwarding.send)."""
import json

from flask import Response

from webapp.operations import Operation
from webapp.upstream import failures, masking, transport
from webapp.proxy.forwarding import Sent
from webapp.proxy.streaming import relay as relay_events
from webapp.providers.base import Target

TEXT_TYPES = ("application/json", "text/")


def relay(sent: Sent, target: Target, record, operation: Operation, headers: dict,
          streamed: bool) -> Response:
    response = sent.response
    kind = response.headers.get("content-type") or "application/octet-stream"
    headers["x-teamgate-overhead-ms"] = str(record.overhead_ms())
    if kind.startswith("text/event-stream") and streamed:
        record.stream = True
        return Response(relay_events(response, target, record, operation), status=200,
                        headers=headers, content_type=kind)
    if kind.startswith(TEXT_TYPES) or not streamed:
        return _text(response, target, record, operation, headers, kind)
    return Response(_bytes(response, record), status=200, headers=headers, content_type=kind)


def _text(response: transport.Answer, target: Target, record, operation: Operation,
          headers: dict, kind: str) -> Response:
    try:
        content = response.content
    except transport.TransportError as exc:
        error = failures.from_exception(exc)
        record.write(error.status, error.error_type)
        raise error from None
    finally:
        response.close()
    secret = masking.Secret.of(target)
    payload = None
    if kind.startswith("application/json"):
        try:
            payload = json.loads(content)
        except (ValueError, RecursionError):
            payload = None
        record.take_usage(operation.usage(payload) if isinstance(payload, dict) else None)
    if secret is not None:
        masked = masking.answer(secret, content, payload) if payload is not None else None
        content = masked if masked is not None else (
            json.dumps(payload).encode() if payload is not None else secret.scrub(content))
    record.write(200)
    return Response(content, status=200, headers=headers, content_type=kind)


def _bytes(response: transport.Answer, record):
    """The audio as it arrives; the call is logged when it ends (502 if the upstream broke
    off, which the caller sees as a short body, 499 if the caller went away)."""
    status, error_type = 200, None
    try:
        yield from response.chunks()
    except transport.TransportError as exc:
        error = failures.from_exception(exc)
        status, error_type = error.status, error.error_type
    except GeneratorExit:
        status, error_type = 499, "client_closed"
        raise
    finally:
        response.close()
        record.write(status, error_type)
