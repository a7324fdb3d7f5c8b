"""Relaying an upstream's server-sent events to the caller as they arrive, in blocks of whole
events: what arrived up to its last event's end is relayed at once, with the team's key masked
in it (webapp/upstream/masking.py); only an event still incomplete is held until its end arrives,
which no client could act on sooner. Status and headers are decided before the first byte; a
failure after it becomes one `data: {"error": ...}` event. Closing the generator (the client
went away) closes the upstream.

Every chat stream is logged with its token counts: Teamgate asks an upstream that takes
stream_options for the usage chunk (Provider.takes_stream_usage) and, when the caller did not
ask for it, takes it out again, so that the caller reads what the upstream would have sent it.
A stream cut short (the upstream broke off, the client went away) before its usage came is
logged with an estimate: the prompt counted as the tpm limit estimates it, a completion token
for each delta relayed (about one each in OpenAI's streams), so that it is still paid for.

Every step is linear in the bytes of its piece: each piece is searched once for the last event
end in it, and what is held is joined once, when its event ends."""

from webapp.operations import Operation
from webapp.upstream import failures, masking, transport
from webapp.providers import openai_shape
from webapp.providers.base import Target
from webapp.providers.openai_shape import StreamOutcome
from webapp.services.limits import estimate_tokens

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


def _blocks(chunks, secret: masking.Secret | None, limit: int):
    """An OpenAI-compatible upstream's stream in blocks of whole events, the key masked. An
    event may not grow past `limit` bytes (the event-stream line limit)."""
    held, size, tail = [], 0, b""  # an event begun, its size so far, its last two bytes
    relayed = 0  # what of the event begun was relayed already (a long event goes as it comes)
    for piece in chunks:
        # most pieces end where an event ends: an upstream writes each event whole
        cut = len(piece) if piece.endswith(b"\n\n") else _last_event_end(tail, piece)
        if cut:
            block = b"".join((*held, piece[:cut])) if held else piece[:cut]
            held, size = ([piece[cut:]], len(piece) - cut) if cut < len(piece) else ([], 0)
            tail, relayed = (held[0][-2:] if held else b""), 0
            yield masking.events(secret, block)
            continue
        held.append(piece)
        size += len(piece)
        tail = (tail + piece)[-2:]
        if relayed + size > limit:
            raise transport.AnswerTooLarge("line", limit)
        if size >= EVENT_LIMIT:
            data = b"".join(held)
            cut = len(data) - masking.held_back(secret, data)
            held, size = [data[cut:]], len(data) - cut
            relayed += cut
            yield secret.scrub(data[:cut]) if secret else data[:cut]
    rest = b"".join(held).rstrip(b"\r\n")
    if rest:  # the upstream ended inside an event: end it, so that a client reads it
        yield masking.events(secret, rest + b"\n\n")


def _reframed(response: transport.Answer, target: Target, secret, outcome: StreamOutcome,
              include_usage: bool):
    source = response.lines() if target.provider.stream_lines else response.chunks()
    for event in target.provider.translate_stream(source, target.upstream_model,
                                                  outcome, include_usage):
        yield masking.events(secret, event)


def _estimate(record, body: dict | None, deltas: int):
    """The counts of a stream that ended before its usage came: what the upstream reported
    so far, the rest estimated."""
    if record.prompt_tokens is None:
        record.prompt_tokens = estimate_tokens({"messages": (body or {}).get("messages"),
                                                "input": (body or {}).get("input")})
    if record.completion_tokens is None:
        record.completion_tokens = deltas


def relay(response: transport.Answer, target: Target, record, operation: Operation,
          body: dict | None = None):
    """The upstream's stream for `operation` (the one it was called with; `body`, what it was
    called with), its usage read on the way and the call logged when it ends."""
    status, error_type, last, deltas = 200, None, b"", 0
    secret = masking.Secret.of(target)
    outcome = StreamOutcome(line_limit=response.line_limit)
    asked = openai_shape.asks_stream_usage(body)
    strip = not asked and target.provider.stream_usage_asked(target, operation.name)
    if target.provider.relays(operation.name):
        blocks = _blocks(response.chunks(), secret, response.line_limit)
    else:
        blocks = _reframed(response, target, secret, outcome, asked)
    try:
        for block in blocks:
            if b'"usage"' in block:
                # with usage asked for, every chunk carries "usage": null; only one has counts
                if openai_shape.reports_usage(block):
                    record.take_usage(operation.stream_usage(block))
                if strip:
                    block = openai_shape.without_usage(block)
                    if not block:
                        continue
            deltas += openai_shape.deltas(block)
            last = block
            yield block
        if outcome.error is not None:  # the translation ended the stream with an error event
            status, error_type = outcome.error.status, outcome.error.error_type
        elif operation.stream_end and operation.stream_end not in last[-64:]:
            yield operation.stream_end + b"\n\n"
    except transport.TransportError as exc:
        error = failures.from_exception(exc)
        status, error_type = error.status, error.error_type
        if last and not last.endswith(b"\n\n"):  # cut inside an event: end it first
            yield b"\n\n"
        yield operation.error_event(error)
    except GeneratorExit:
        status, error_type = 499, "client_closed"
        raise
    finally:
        response.close()
        if outcome.prompt_tokens is not None:
            record.take_usage({"prompt_tokens": outcome.prompt_tokens,
                               "completion_tokens": outcome.completion_tokens,
                               "cache_read_tokens": outcome.cached_tokens,
                               "cache_creation_tokens": outcome.cache_creation_tokens})
        if status != 200 and deltas:
            _estimate(record, body, deltas)
        record.write(status, error_type)
