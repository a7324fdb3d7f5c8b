"""OpenAI and every server that speaks its API (vLLM, LM Studio, ...)."""
from webapp.providers.base import Field, Provider, Target, api_key_field

PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings", "completions": "/completions",
         "images": "/images/generations", "speech": "/audio/speech",
         "transcriptions": "/audio/transcriptions", "moderations": "/moderations"}


class OpenAIProvider(Provider):
    name = "openai"
    label = "OpenAI or OpenAI-compatible"
    aliases = ("openai_compatible", "hosted_vllm", "text-completion-openai")
    default_api_base = "https://api.openai.com/v1"
    operations = ("chat", "embeddings", "completions", "images", "speech", "transcriptions",
                  "moderations")
    fields = (
        Field("api_base", "API base URL", "Leave blank for https://api.openai.com/v1.",
              kind="url"),
        Field("api_version", "API version", "Set it only to call an Azure deployment (as in "
              "the team-model example).", max_length=64),
        Field("organization", "Organization", "Sent as OpenAI-Organization.", max_length=256),
        api_key_field(),
    )

    def takes_stream_usage(self, target: Target) -> bool:
        return True

    def url(self, target: Target, operation: str) -> str:
        return self.base(target) + PATHS[operation]

    def auth_headers(self, target: Target) -> dict:
        headers = {}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        if target.organization:
            headers["OpenAI-Organization"] = target.organization
        return headers
