"""Anthropic: its Messages API routes relayed as they are sent, and OpenAI's chat completions
translated to the Messages API and back (webapp/providers/anthropic_chat.py for the bodies,
anthropic_stream.py for the stream)."""
import json

from webapp.providers import anthropic_chat, anthropic_stream
from webapp.providers import openai_shape as shape
from webapp.providers.base import Field, PreparedCall, Provider, Target, api_key_field

API_VERSION = "2023-06-01"


def compact(body: dict) -> bytes:
    """A body as the anthropic SDKs and Claude Code write it (no spaces, UTF-8 unescaped), so
    that a relayed call reaches Anthropic as the caller's bytes with only `model` changed."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate, escaped in the caller's JSON
        return json.dumps(body, separators=(",", ":")).encode()


class AnthropicProvider(Provider):
    name = "anthropic"
    label = "Anthropic"
    default_api_base = "https://api.anthropic.com"
    fields = (
        Field("api_base", "API base URL", "Leave blank for https://api.anthropic.com.",
              kind="url"),
        api_key_field(),
    )
    # chat is translated; the Messages API routes are Anthropic's own, relayed as they are
    operations = ("chat", "messages", "count_tokens")
    PATHS = {"chat": "/v1/messages", "messages": "/v1/messages",
             "count_tokens": "/v1/messages/count_tokens"}
    # a chat stream is translated with what it has shown so far (tool calls are numbered in
    # their order), from its lines
    stream_lines = True

    def relays(self, operation: str) -> bool:
        return operation != "chat"

    def url(self, target: Target, operation: str) -> str:
        return self.base(target) + self.PATHS[operation]

    def auth_headers(self, target: Target) -> dict:
        headers = {"anthropic-version": API_VERSION}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return headers

    def prepare(self, target: Target, operation: str, body: dict) -> PreparedCall:
        if operation == "chat":
            payload = anthropic_chat.request(body, target.upstream_model,
                                             target.max_output_tokens)
        else:  # relayed: the caller's body, its model the deployment's
            payload = {**body, "model": target.upstream_model}
        headers = {"Content-Type": "application/json", **self.auth_headers(target)}
        return PreparedCall(self.url(target, operation), headers, compact(payload))

    def translate_response(self, operation: str, payload: dict, model: str = "") -> dict:
        return anthropic_chat.response(payload)

    def translate_stream(self, lines, model: str = "",
                         outcome: shape.StreamOutcome | None = None,
                         include_usage: bool = False):
        """The chat stream, from the lines of Anthropic's (stream_lines)."""
        outcome = outcome if outcome is not None else shape.StreamOutcome()
        return anthropic_stream.events(lines, model, outcome, include_usage)
