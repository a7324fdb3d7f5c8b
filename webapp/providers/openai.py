"""OpenAI and every server that speaks its API (vLLM, LM Studio, ...)."""
from webapp.providers.base import Provider, Target

PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}


class OpenAIProvider(Provider):
    name = "openai"
    aliases = ("openai_compatible", "hosted_vllm", "text-completion-openai")
    default_api_base = "https://api.openai.com/v1"

    def url(self, target: Target, operation: str) -> str:
        return self.base(target) + PATHS[operation]

    def auth_headers(self, target: Target) -> dict:
        headers = {}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        if target.organization:
            headers["OpenAI-Organization"] = target.organization
        return headers
