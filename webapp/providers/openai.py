"""OpenAI and every server that speaks its API (vLLM, LM Studio, ...)."""
from webapp.providers.base import Field, Provider, Target, api_key_field

PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings", "completions": "/completions",
         "images": "/images/generations", "speech": "/audio/speech",
         "transcriptions": "/audio/transcriptions", "moderations": "/moderations",
         "responses": "/responses"}
# the names of servers that speak OpenAI's chat but not its Responses API: a Responses call to
# them is translated to chat completions (webapp/operations/responses_chat.py)
CHAT_ONLY = ("openai_compatible", "hosted_vllm", "text-completion-openai")


class OpenAIProvider(Provider):
    name = "openai"
    label = "OpenAI or OpenAI-compatible"
    aliases = CHAT_ONLY
    default_api_base = "https://api.openai.com/v1"
    operations = tuple(PATHS)
    fields = (
        Field("api_base", "API base URL", "Leave blank for https://api.openai.com/v1.",
              kind="url"),
        Field("api_version", "API version", "Set it only to call an Azure deployment (as in "
              "the team-model example).", max_length=64),
        Field("organization", "Organization", "Sent as OpenAI-Organization.", max_length=256),
        api_key_field(),
    )

    def offers(self, target: Target, operation: str) -> bool:
        if operation == "responses":
            params = target.params
            named = params.get("custom_llm_provider") or params.get("model", "").partition(
                "/")[0]
            return named not in CHAT_ONLY
        return super().offers(target, operation)

    def takes_stream_usage(self, target: Target) -> bool:
        return True

    def url(self, target: Target, operation: str) -> str:
        return self.base(target) + PATHS[operation]

    def response_url(self, target: Target, tail: str) -> str:
        """A stored response's URL (`tail`: /<id>, /<id>/cancel, /<id>/input_items)."""
        return self.base(target) + PATHS["responses"] + tail

    def auth_headers(self, target: Target) -> dict:
        headers = {}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        if target.organization:
            headers["OpenAI-Organization"] = target.organization
        return headers
