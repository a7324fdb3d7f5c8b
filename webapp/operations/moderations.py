"""OpenAI's moderations: POST /v1/moderations, on deployments whose model_info.mode is
`moderation`. Moderations report no token usage."""
from webapp.errors import APIError
from webapp.operations.base import Operation, require


class Moderations(Operation):
    name = "moderations"
    paths = ("/v1/moderations", "/moderations")
    summary = "Moderations (OpenAI's shape), on moderation deployments."
    body_schema = {
        "type": "object", "required": ["model", "input"],
        "properties": {"model": {"type": "string"},
                       "input": {"type": ["string", "array"]}},
    }
    stream_end = None
    modes = ("moderation",)

    def check(self, body: dict):
        require(body, "input")
        if not isinstance(body["input"], (str, list)):
            raise APIError(400, "input must be a string or a list (of strings or input parts).",
                           param="input")
