"""OpenAI's legacy text completions: POST /v1/completions (gpt-3.5-turbo-instruct, vLLM's
base models). The stream is OpenAI's, ending with [DONE]; usage is OpenAI's usage object."""
from webapp.errors import APIError
from webapp.operations.base import Operation, require


class Completions(Operation):
    name = "completions"
    paths = ("/v1/completions", "/completions")
    summary = "Legacy text completions (OpenAI's shape), streamed or not."
    body_schema = {
        "type": "object", "required": ["model", "prompt"],
        "properties": {"model": {"type": "string"},
                       "prompt": {"type": ["string", "array"]},
                       "max_tokens": {"type": ["integer", "null"]},
                       "stream": {"type": ["boolean", "null"]}},
    }
    deployment_path = "completions"

    def check(self, body: dict):
        require(body, "prompt")
        if not isinstance(body["prompt"], (str, list)):
            raise APIError(400, "prompt must be a string or a list (of strings or tokens).",
                           param="prompt")
