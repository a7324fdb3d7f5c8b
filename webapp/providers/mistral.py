"""Mistral AI's platform, which speaks OpenAI's chat and embeddings API. Its streams end with
their usage on their own; stream_options is refused there (422, extra_forbidden)."""
from webapp.providers.base import Field, Target, api_key_field
from webapp.providers.openai import OpenAIProvider


class MistralProvider(OpenAIProvider):
    name = "mistral"
    label = "Mistral AI"
    aliases = ()
    operations = ("chat", "embeddings")
    default_api_base = "https://api.mistral.ai/v1"
    model_help = "As Mistral names it, for example mistral-large-latest."
    fields = (
        Field("api_base", "API base URL", "Leave blank for https://api.mistral.ai/v1.",
              kind="url"),
        api_key_field(),
    )

    def takes_stream_usage(self, target: Target) -> bool:
        return False
