"""Mistral AI's platform, which speaks OpenAI's chat and embeddings API."""
from webapp.providers.base import Field, api_key_field
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
