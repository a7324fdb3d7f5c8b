"""What an operation (one kind of proxied call: chat, embeddings, ...) declares: its public
paths, what its body must hold, the name the request log gives it, and how usage is read from its
answer and how its stream ends. Routes, /openapi.json, the request log and limits read it."""
from flask import current_app

from webapp.errors import APIError

DONE = b"data: [DONE]"


class Operation:
    name = ""  # what providers list in their `operations`
    paths: tuple[str, ...] = ()  # every public path that serves it, /v1 first
    summary = ""
    body_schema: dict = {}  # for /openapi.json; check() is what enforces it
    stream_end: bytes | None = DONE  # the last event of a stream, sent if the upstream did not

    @property
    def log_route(self) -> str:
        """The route the request log records: the path without its /v1 prefix."""
        return self.paths[-1]

    @property
    def endpoint(self) -> str:
        """The Flask endpoint and OpenAPI operation name: chat_completions, embeddings."""
        return self.log_route.strip("/").replace("/", "_")

    def check(self, body: dict):
        """Refuse a body this operation cannot take (400 naming the field); the model field is
        checked for every operation by the call path."""

    def usage(self, payload: dict) -> tuple[int | None, int | None]:
        """(prompt tokens, completion tokens) from an answer or a stream chunk in OpenAI's
        shape."""
        usage = payload.get("usage") if isinstance(payload, dict) else None
        if not isinstance(usage, dict):
            return None, None
        return usage.get("prompt_tokens"), usage.get("completion_tokens")


def limit(name: str) -> int:
    return current_app.config[name]


def require(body: dict, field: str, message: str | None = None):
    if field not in body:
        raise APIError(400, message or f"Missing required field: {field}.", param=field)
