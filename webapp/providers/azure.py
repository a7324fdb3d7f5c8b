"""Azure OpenAI deployments: the deployment and api-version are in the URL, the key in api-key."""
import re
from urllib.parse import quote

from webapp.providers.base import Field, Provider, Target, api_key_field

PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "completions": "completions",
         "images": "images/generations", "speech": "audio/speech",
         "transcriptions": "audio/transcriptions"}
DEFAULT_API_VERSION = "2024-10-21"
# the Responses API is served per resource (the deployment is the body's model) from this
# api-version on; a deployment saved with an older one is called with this one there
RESPONSES_API_VERSION = "2025-03-01-preview"
# the first api-version whose chat completions take stream_options (older ones answer 400)
STREAM_USAGE_SINCE = "2024-08-01"


class AzureProvider(Provider):
    name = "azure"
    label = "Azure OpenAI"
    model_help = "The Azure deployment name."
    aliases = ("azure_openai",)
    # Azure OpenAI has no moderations endpoint (its content filters run on every call)
    operations = (*PATHS, "responses")
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
        if operation == "responses":
            return self.response_url(target, "")
        deployment = quote(target.upstream_model, safe="")
        version = quote(target.api_version or DEFAULT_API_VERSION, safe="")
        return (f"{self.base(target)}/openai/deployments/{deployment}/{PATHS[operation]}"
                f"?api-version={version}")

    def response_url(self, target: Target, tail: str) -> str:
        """The Responses API's URL on the resource (`tail`: "", /<id>, /<id>/cancel, ...)."""
        version = max(target.api_version or "", RESPONSES_API_VERSION)
        return (f"{self.base(target)}/openai/responses{tail}"
                f"?api-version={quote(version, safe='')}")

    def auth_headers(self, target: Target) -> dict:
        return {"api-key": target.api_key} if target.api_key else {}
