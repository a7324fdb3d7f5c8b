"""OpenAI's embeddings: POST /v1/embeddings."""
from webapp.operations.base import Operation, require


class Embeddings(Operation):
    name = "embeddings"
    paths = ("/v1/embeddings", "/embeddings")
    summary = "Embeddings (OpenAI's shape)."
    body_schema = {
        "type": "object", "required": ["model", "input"],
        "properties": {"model": {"type": "string"}, "input": {"type": ["string", "array"]}},
    }
    stream_end = None
    deployment_path = "embeddings"

    def check(self, body: dict):
        require(body, "input")
