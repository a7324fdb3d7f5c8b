"""Azure OpenAI deployments: the deployment and api-version are in the URL, the key in api-key."""
import re
from urllib.parse import quote

from webapp.providers.base import Field, Provider, Target, api_key_field

PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "completions": "completions",
         "images": "images/generations", "speech": "audio/speech",
         "transcriptions": "audio/transcriptions"}
DEFAULT_API_VERSION = "2024-10-21"
# the first api-version whose chat completions take stream_options (older ones answer 400)
STREAM_USAGE_SINCE = "2024-08-01"


class AzureProvider(Provider):
    name = "azure"
    label = "Azure OpenAI"
    model_help = "The Azure deployment name."
    aliases = ("azure_openai",)
    # Azure OpenAI has no moderations endpoint (its content filters run on every call)
    operations = tuple(PATHS)
    fields = (
        Field("api_base", "API base URL", "https://<resource>.openai.azure.com", kind="url",
              required=True),
        Field("api_version", "API version", f"Blank means {DEFAULT_API_VERSION}.",
              max_length=64),
        api_key_field(),
    )

    def takes_stream_usage(self, target: Target) -> bool:
        version = target.api_version or DEFAULT_API_VERSION
        return bool(re.match(r"\d{4}-\d{2}-\d{2}", version)) and version[:10] >= STREAM_USAGE_SINCE

    def url(self, target: Target, operation: str) -> str:
        deployment = quote(target.upstream_model, safe="")
        version = quote(target.api_version or DEFAULT_API_VERSION, safe="")
        return (f"{self.base(target)}/openai/deployments/{deployment}/{PATHS[operation]}"
                f"?api-version={version}")

    def auth_headers(self, target: Target) -> dict:
        return {"api-key": target.api_key} if target.api_key else {}
