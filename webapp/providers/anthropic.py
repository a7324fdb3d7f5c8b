"""Anthropic's Messages API, translated to and from OpenAI's chat shape."""
import json
import time

from webapp.providers.base import Field, PreparedCall, Provider, Target, api_key_field

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                "tool_use": "tool_calls"}
PASSED_THROUGH = ("temperature", "top_p", "stream", "metadata")


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
        if self.relays(operation):
            return super().prepare(target, operation, body)
        system = [m.get("content") for m in body.get("messages", []) if m.get("role") == "system"]
        messages = [m for m in body.get("messages", []) if m.get("role") != "system"]
        payload = {"model": target.upstream_model, "messages": messages,
                   "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens")
                   or DEFAULT_MAX_TOKENS}
        payload.update({k: body[k] for k in PASSED_THROUGH if k in body})
        if system:
            payload["system"] = "\n".join(str(s) for s in system)
        if body.get("stop"):
            stop = body["stop"]
            payload["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        headers = {"Content-Type": "application/json", **self.auth_headers(target)}
        return PreparedCall(self.url(target, operation), headers, payload)

    def translate_response(self, operation: str, payload: dict) -> dict:
        text = _text(payload.get("content"))
        usage = payload.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        prompt, completion = _count(usage, "input_tokens"), _count(usage, "output_tokens")
        return {
            "id": payload.get("id", ""), "object": "chat.completion", "created": int(time.time()),
            "model": payload.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": _finish(payload.get("stop_reason"))}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }

    def translate_stream_line(self, line: bytes) -> bytes | None:
        """One line of Anthropic's stream as an OpenAI chunk: one parse of the line, nothing
        kept between lines."""
        if not line.startswith(b"data:"):
            return None
        try:
            event = json.loads(line[5:])
        except (ValueError, RecursionError):
            return None
        if not isinstance(event, dict):
            return None
        kind = event.get("type")
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        if kind == "content_block_delta":
            text = delta.get("text", "")
            delta, finish = {"content": text if isinstance(text, str) else ""}, None
        elif kind == "message_delta":
            delta, finish = {}, _finish(delta.get("stop_reason"))
        elif kind == "message_stop":
            return b"data: [DONE]"
        else:
            return None
        chunk = {"object": "chat.completion.chunk", "created": int(time.time()),
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(chunk).encode()


def _text(blocks) -> str:
    """The text blocks of an answer, joined; anything else in `content` is left out."""
    if not isinstance(blocks, list):
        return ""
    return "".join(block["text"] for block in blocks if isinstance(block, dict)
                   and block.get("type") == "text" and isinstance(block.get("text"), str))


def _finish(reason) -> str:
    return STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def _count(usage: dict, name: str) -> int:
    value = usage.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
