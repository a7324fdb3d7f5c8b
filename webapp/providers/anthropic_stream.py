"""Anthropic's Messages stream as OpenAI chat.completion.chunk events: text deltas as content,
each tool_use block as one tool call numbered in its order (its input_json_delta pieces as the
call's arguments), the response_format tool's input as content, the stop reason on the last
chunk, the usage chunk at the end when the caller asked for it (stream_options.include_usage),
then `[DONE]`. An `error` event (overloaded_error, say) ends the stream with an error event in
the contract's shape, and so does a stream that stops before message_stop. Thinking blocks,
pings and event types Anthropic may add later are left out."""
import json

from webapp.errors import APIError
from webapp.providers import anthropic_chat as chat
from webapp.providers import openai_shape as shape

# Anthropic's error types as the HTTP statuses it gives them (docs: API errors)
ERROR_STATUSES = {"invalid_request_error": 400, "authentication_error": 401,
                  "billing_error": 402, "permission_error": 403, "not_found_error": 404,
                  "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                  "timeout_error": 504, "overloaded_error": 529}
USAGE_NAMES = ("input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_creation_input_tokens")


class StreamTranslator:
    """One stream's state: the open content blocks and what they became, the usage so far."""

    def __init__(self, model: str, outcome: shape.StreamOutcome, include_usage: bool):
        self.writer = shape.ChunkWriter(model)
        self.outcome, self.include_usage = outcome, include_usage
        self.calls: dict[int, int] = {}  # content block index -> tool_calls index
        self.answers: set[int] = set()  # blocks of the response_format tool
        self.usage: dict = {}
        self.finished = False
        self.handlers = {"message_start": self._message_start,
                         "content_block_start": self._block_start,
                         "content_block_delta": self._block_delta,
                         "message_delta": self._message_delta,
                         "message_stop": self._message_stop}

    def event(self, payload: dict) -> bytes | None:
        handler = self.handlers.get(payload.get("type"))
        return handler(payload) if handler else None

    def _take_usage(self, usage):
        if isinstance(usage, dict):  # message_delta's counts are cumulative: later ones win
            self.usage.update({k: usage[k] for k in USAGE_NAMES
                               if isinstance(usage.get(k), int)})
        counts = chat.usage(self.usage)
        self.outcome.take_usage(counts)
        self.outcome.cache_creation_tokens = counts.get("cache_creation_input_tokens")

    def _message_start(self, payload: dict) -> bytes:
        """The first chunk, the assistant's role with empty content as OpenAI sends it, at
        once: the caller's first byte does not wait for the first token."""
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        if isinstance(message.get("id"), str):
            self.writer.id = message["id"]
        if isinstance(message.get("model"), str):
            self.writer.model = message["model"]
        self._take_usage(message.get("usage"))
        return self.writer.chunk({"content": ""})

    def _block_start(self, payload: dict) -> bytes | None:
        block = payload.get("content_block")
        index = payload.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return None
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            return self.writer.chunk({"content": block["text"]})
        if block.get("type") != "tool_use":
            return None
        if block.get("name") == chat.ANSWER_TOOL:
            self.answers.add(index)
            return None
        position = self.calls.setdefault(index, len(self.calls))
        return self.writer.chunk({"tool_calls": [shape.tool_call(
            position, block.get("id") or shape.new_call_id(), block.get("name") or "", "")]})

    def _block_delta(self, payload: dict) -> bytes | None:
        delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
        index = payload.get("index")
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            return self.writer.chunk({"content": delta["text"]})
        piece = delta.get("partial_json")
        if kind != "input_json_delta" or not isinstance(piece, str) or not piece:
            return None
        if index in self.answers:
            return self.writer.chunk({"content": piece})
        if index not in self.calls:
            return None
        return self.writer.chunk({"tool_calls": [
            {"index": self.calls[index], "function": {"arguments": piece}}]})

    def _message_delta(self, payload: dict) -> bytes:
        self._take_usage(payload.get("usage"))
        delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
        return self.writer.chunk({}, chat.finish_reason(delta.get("stop_reason"),
                                                        bool(self.answers)))

    def _message_stop(self, payload: dict) -> bytes | None:
        self.finished = True
        if self.include_usage:
            return self.writer.usage_chunk(chat.usage(self.usage))
        return None


def error_of(payload: dict) -> APIError:
    """An `error` event as the caller's error, through the one failure mapper."""
    error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
    kind = error.get("type") if isinstance(error.get("type"), str) else "api_error"
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    return shape.stream_failure(ERROR_STATUSES.get(kind, 500), f"{kind}: {message}"
                                if message else kind)


def events(lines, model: str, outcome: shape.StreamOutcome, include_usage: bool):
    """OpenAI SSE events from the lines of Anthropic's stream, ending `[DONE]`, or one error
    event."""
    translator = StreamTranslator(model, outcome, include_usage)
    error = None
    for data in _data(lines):
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if not isinstance(payload, dict):
            continue
        if payload.get("type") == "error":
            error = error_of(payload)
            break
        out = None if translator.finished else translator.event(payload)
        if out:
            yield out
    if error is None and not translator.finished:
        error = APIError(502, "The upstream's stream ended before the answer was complete.")
    if error is not None:
        outcome.error = error
        yield shape.event(error.body())
        return
    yield shape.DONE


def _data(lines):
    """Each event's data (its data: lines joined), as an event's blank line ends it."""
    held = []
    for line in lines:
        if line.startswith(b"data:"):
            held.append(line[6:] if line[5:6] == b" " else line[5:])
        elif not line and held:
            yield b"\n".join(held) if len(held) > 1 else held[0]
            held = []
    if held:
        yield b"\n".join(held)
