"""OpenAI's Responses API: POST /v1/responses, what the Codex CLI and `client.responses` call
(and POST /openai/responses, where Azure OpenAI's client calls it).

OpenAI and Azure deployments take the body as it came (only `model` replaced) and their event
stream is relayed as it arrives; every other deployment is reached through chat completions
(responses_chat.py and responses_stream.py translate both ways). Which deployment made a
response, and for translated ones the conversation itself, is kept by the proxy
(webapp/proxy/conversations.py), so that previous_response_id and GET /v1/responses/{id} work."""
import json

from webapp.errors import APIError
from webapp.operations import responses_chat
from webapp.operations.base import Operation, limit
from webapp.operations.responses_stream import ResponseStream


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_counts(usage) -> dict | None:
    """Teamgate's token counts from a Responses `usage` object."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return {"prompt_tokens": _count(usage.get("input_tokens")),
            "completion_tokens": _count(usage.get("output_tokens")),
            "cache_read_tokens": _count(cached)}


class Responses(Operation):
    name = "responses"
    # /openai/responses: where AzureOpenAI(azure_endpoint=...).responses calls it (the model in
    # the body, not under /openai/deployments/{name})
    paths = ("/v1/responses", "/responses", "/openai/responses")
    summary = "OpenAI's Responses API, streamed or not (the Codex CLI, client.responses)."
    body_schema = {
        "type": "object", "required": ["model", "input"],
        "properties": {"model": {"type": "string"},
                       "input": {"type": ["string", "array"]},
                       "instructions": {"type": ["string", "null"]},
                       "previous_response_id": {"type": ["string", "null"]},
                       "stream": {"type": "boolean"}},
    }
    stream_end = None  # the stream ends with response.completed, which the upstream sends
    via = "chat"

    @property
    def log_route(self) -> str:
        return "/responses"

    def check(self, body: dict):
        value = body.get("input")
        if isinstance(value, list):
            if len(value) > limit("MAX_MESSAGES"):
                raise APIError(400, f"Too many input items (at most {limit('MAX_MESSAGES')}).",
                               param="input")
        elif not isinstance(value, str):
            raise APIError(400, "input must be a string or a list of input items.",
                           param="input")
        previous = body.get("previous_response_id")
        if previous is not None and not isinstance(previous, str):
            raise APIError(400, "previous_response_id must be a string.",
                           param="previous_response_id")

    def usage(self, payload: dict) -> dict | None:
        if not isinstance(payload, dict):
            return None
        if isinstance(payload.get("response"), dict):  # a stream's lifecycle event
            return usage_counts(payload["response"].get("usage"))
        return usage_counts(payload.get("usage"))

    def error_event(self, error: APIError) -> bytes:
        data = {"type": "error", "code": error.error_type, "message": error.message,
                "param": error.param, "sequence_number": 0}
        return b"event: error\ndata: " + json.dumps(data).encode() + b"\n\n"

    def to_via(self, body: dict) -> dict:
        return responses_chat.chat_body(body)

    def from_via(self, payload: dict, model: str) -> dict:
        return responses_chat.from_completion(payload, model)

    def from_via_stream(self, blocks, model: str):
        return ResponseStream(model).events(blocks)
