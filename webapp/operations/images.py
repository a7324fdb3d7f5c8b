"""OpenAI's image generation: POST /v1/images/generations, on deployments whose
model_info.mode is `image_generation`. gpt-image models count tokens (input_tokens and
output_tokens, in the answer and in a stream's image_generation.completed event); DALL-E
counts none."""
from webapp.errors import APIError
from webapp.operations.base import Operation, require


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def token_usage(payload) -> dict | None:
    """Teamgate's token counts from a `usage` of input_tokens and output_tokens (images,
    speech and transcriptions count so); None for a usage in seconds (whisper) or none."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict) or "input_tokens" not in usage:
        return None
    details = usage.get("input_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    return {"prompt_tokens": _count(usage.get("input_tokens")),
            "completion_tokens": _count(usage.get("output_tokens")),
            "cache_read_tokens": cached}


class ImageGenerations(Operation):
    name = "images"
    paths = ("/v1/images/generations", "/images/generations")
    summary = "Image generation (OpenAI's shape), on image_generation deployments."
    body_schema = {
        "type": "object", "required": ["model", "prompt"],
        "properties": {"model": {"type": "string"}, "prompt": {"type": "string"},
                       "n": {"type": ["integer", "null"]}, "size": {"type": ["string", "null"]},
                       "stream": {"type": ["boolean", "null"]}},
    }
    stream_end = None  # an image stream ends with its image_generation.completed event
    modes = ("image_generation",)
    deployment_path = "images/generations"

    def check(self, body: dict):
        require(body, "prompt")
        if not isinstance(body["prompt"], str) or not body["prompt"]:
            raise APIError(400, "prompt must be a non-empty string.", param="prompt")

    def usage(self, payload: dict) -> dict | None:
        return token_usage(payload)
