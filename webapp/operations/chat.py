"""OpenAI's chat completions: POST /v1/chat/completions."""
from webapp.operations.base import Operation, require_messages


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
    deployment_path = "chat/completions"

    def check(self, body: dict):
        require_messages(body)
