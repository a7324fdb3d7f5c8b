"""Relaying an upstream's server-sent events to the caller as they arrive, in blocks of whole
events: what arrived up to its last event's end is relayed at once, with the team's key masked
in it (webapp/proxy/masking.py); only an event still incomplete is held until its end arrives,
which no client could act on sooner. Status and headers are decided before the first byte; a
failure after it becomes one `data: {"error": ...}` event. Closing the generator (the client
went away) closes the upstream.

Every step is linear in the bytes of its piece: each piece is searched once for the last event
end in it, and what is held is joined once, when its event ends."""

from webapp.operations import Operation
from webapp.proxy import failures, masking, transport
from webapp.providers.base import Target
from webapp.providers.openai_shape import StreamOutcome

# an event still incomplete after this many bytes is relayed as it comes, less what could be
# the start of the key: for so long an event, only the key's own bytes are looked for
EVENT_LIMIT = 1024 * 1024


def _last_event_end(tail: bytes, piece: bytes) -> int:
    """How much of `piece` reaches to the end of the last event that ends in it (0: none
    does). `tail` is the last two bytes held before it, for an event end cut across pieces."""
    window = tail + piece
    found = window.rfind(b"\n\n")
    end = found + 2 if found >= 0 else 0
    found = window.rfind(b"\n\r\n", max(end - 1, 0))  # CRLF line ends
    if found >= 0:
        end = max(end, found + 3)
    return max(end - len(tail), 0)


def _blocks(chunks, secret: masking.Secret | None):
    """An OpenAI-compatible upstream's stream in blocks of whole events, the key masked."""
    held, size, tail = [], 0, b""  # an event begun, its size so far, its last two bytes
    for piece in chunks:
        # most pieces end where an event ends: an upstream writes each event whole
        cut = len(piece) if piece.endswith(b"\n\n") else _last_event_end(tail, piece)
        if cut:
            block = b"".join((*held, piece[:cut])) if held else piece[:cut]
            held, size = ([piece[cut:]], len(piece) - cut) if cut < len(piece) else ([], 0)
            tail = held[0][-2:] if held else b""
            yield masking.events(secret, block)
            continue
        held.append(piece)
        size += len(piece)
        tail = (tail + piece)[-2:]
        if size >= EVENT_LIMIT:
            data = b"".join(held)
            cut = len(data) - masking.held_back(secret, data)
            held, size = [data[cut:]], len(data) - cut
            yield secret.scrub(data[:cut]) if secret else data[:cut]
    rest = b"".join(held).rstrip(b"\r\n")
    if rest:  # the upstream ended inside an event: end it, so that a client reads it
        yield masking.events(secret, rest + b"\n\n")


def _translated(response: transport.Answer, target: Target, secret):
    for line in response.lines():
        out = target.provider.translate_stream_line(line)
        if out is not None:
            yield masking.events(secret, out + b"\n\n")


def _reframed(response: transport.Answer, target: Target, secret, outcome: StreamOutcome):
    for event in target.provider.translate_stream(response.chunks(), target.upstream_model,
                                                  outcome):
        yield masking.events(secret, event)


def relay(response: transport.Answer, target: Target, record, operation: Operation):
    """The upstream's stream for `operation` (the one it was called with), its usage read on
    the way and the call logged when it ends."""
    status, error_type, last = 200, None, b""
    secret = masking.Secret.of(target)
    outcome = StreamOutcome()
    if target.provider.relays(operation.name):
        blocks = _blocks(response.chunks(), secret)
    elif target.provider.translates_chunks:
        blocks = _reframed(response, target, secret, outcome)
    else:
        blocks = _translated(response, target, secret)
    try:
        for block in blocks:
            if b'"usage"' in block:
                record.take_usage(operation.stream_usage(block))
            last = block
            yield block
        if outcome.error is not None:  # the translation ended the stream with an error event
            status, error_type = outcome.error.status, outcome.error.error_type
        elif operation.stream_end and operation.stream_end not in last[-64:]:
            yield operation.stream_end + b"\n\n"
    except transport.TransportError as exc:
        error = failures.from_exception(exc)
        status, error_type = error.status, error.error_type
        yield operation.error_event(error)
    except GeneratorExit:
        status, error_type = 499, "client_closed"
        raise
    finally:
        response.close()
        if outcome.prompt_tokens is not None:
            record.take_usage({"prompt_tokens": outcome.prompt_tokens,
                               "completion_tokens": outcome.completion_tokens,
                               "cache_read_tokens": outcome.cached_tokens})
        record.write(status, error_type)
