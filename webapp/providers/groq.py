"""Groq's cloud, which speaks OpenAI's chat completions API (no embeddings)."""
from webapp.providers.base import Field, api_key_field
from webapp.providers.openai import OpenAIProvider


class GroqProvider(OpenAIProvider):
    name = "groq"
    label = "Groq"
    aliases = ()
    default_api_base = "https://api.groq.com/openai/v1"
    model_help = "As Groq names it, for example llama-3.3-70b-versatile."
    operations = ("chat",)
    fields = (
        Field("api_base", "API base URL", "Leave blank for https://api.groq.com/openai/v1.",
              kind="url"),
        api_key_field(),
    )
