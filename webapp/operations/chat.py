"""OpenAI's chat completions: POST /v1/chat/completions."""
from webapp.errors import APIError
from webapp.operations.base import Operation, limit


class ChatCompletions(Operation):
    name = "chat"
    paths = ("/v1/chat/completions", "/chat/completions")
    summary = "Chat completions (OpenAI's shape), streamed or not."
    body_schema = {
        "type": "object", "required": ["model", "messages"],
        "properties": {"model": {"type": "string"},
                       "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                       "stream": {"type": "boolean"}},
    }

    def check(self, body: dict):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise APIError(400, "messages must be a non-empty list.", param="messages")
        if len(messages) > limit("MAX_MESSAGES"):
            raise APIError(400, f"Too many messages (at most {limit('MAX_MESSAGES')}).",
                           param="messages")
