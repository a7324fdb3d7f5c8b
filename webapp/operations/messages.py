"""Anthropic's Messages API: POST /v1/messages and /v1/messages/count_tokens (also under
/anthropic, the prefix some clients use), what Claude Code and the anthropic SDK call.

Anthropic deployments take the body as it came (only `model` replaced) and their event stream is
relayed as it arrives; every other deployment is reached through chat completions
(webapp/operations/messages_chat.py translates both ways). Errors on these routes are in
Anthropic's shape, so that the anthropic SDK raises the right exception."""
import json

from webapp.errors import APIError
from webapp.operations import messages_chat
from webapp.operations.messages_chat import anthropic_error
from webapp.operations.base import Operation, require_messages

# the caller's headers an Anthropic upstream needs as they were sent
ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")

def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_counts(usage) -> dict | None:
    """Teamgate's token counts from an Anthropic `usage` object: prompt tokens are all the
    input, cached or not (Anthropic's input_tokens leaves the cached part out)."""
    if not isinstance(usage, dict):
        return None
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    plain = _count(usage.get("input_tokens"))
    counts = {"completion_tokens": _count(usage.get("output_tokens"))}
    if plain is not None or read or written:
        counts.update(prompt_tokens=(plain or 0) + (read or 0) + (written or 0),
                      cache_read_tokens=read, cache_creation_tokens=written)
    return counts


class AnthropicShaped(Operation):
    """What both Messages routes share: Anthropic's errors and headers."""
    forwarded_headers = ANTHROPIC_HEADERS
    stream_end = None  # Anthropic's stream ends with message_stop, which the upstream sends
    error_schema = {"type": "object", "required": ["type", "error"], "properties": {
        "type": {"const": "error"}, "error": {
            "type": "object", "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}}

    def error_body(self, error: APIError) -> dict:
        return anthropic_error(error.status, error.message)

    def error_event(self, error: APIError) -> bytes:
        return b"event: error\ndata: " + json.dumps(self.error_body(error)).encode() + b"\n\n"

    def check(self, body: dict):
        require_messages(body)


class Messages(AnthropicShaped):
    name = "messages"
    paths = ("/v1/messages", "/anthropic/v1/messages")
    summary = "Anthropic's Messages API, streamed or not (Claude Code, the anthropic SDK)."
    body_schema = {
        "type": "object", "required": ["model", "messages", "max_tokens"],
        "properties": {"model": {"type": "string"}, "max_tokens": {"type": "integer"},
                       "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                       "stream": {"type": "boolean"}},
    }
    via = "chat"

    @property
    def log_route(self) -> str:
        return "/v1/messages"

    def check(self, body: dict):
        super().check(body)
        tokens = body.get("max_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise APIError(400, "max_tokens: Field required (a positive integer).",
                           param="max_tokens")

    def usage(self, payload: dict) -> dict | None:
        if not isinstance(payload, dict):
            return None
        if payload.get("type") == "message_start":  # a stream's first event
            message = payload.get("message")
            return usage_counts(message.get("usage") if isinstance(message, dict) else None)
        return usage_counts(payload.get("usage"))

    def to_via(self, body: dict) -> dict:
        return messages_chat.chat_body(body)

    def from_via(self, payload: dict, model: str) -> dict:
        return messages_chat.message(payload, model)

    def from_via_stream(self, blocks, model: str):
        return messages_chat.MessageStream(model).events(blocks)


class CountTokens(AnthropicShaped):
    name = "count_tokens"
    paths = ("/v1/messages/count_tokens", "/anthropic/v1/messages/count_tokens")
    summary = "Anthropic's token count of a Messages request, on Anthropic deployments."
    body_schema = {
        "type": "object", "required": ["model", "messages"],
        "properties": {"model": {"type": "string"},
                       "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}}},
    }

    @property
    def log_route(self) -> str:
        return "/v1/messages/count_tokens"

    def usage(self, payload: dict) -> dict | None:
        return None  # counting tokens uses none
