"""Azure OpenAI deployments: the deployment and api-version are in the URL, the key in api-key."""
from urllib.parse import quote

from webapp.providers.base import Provider, Target

PATHS = {"chat": "chat/completions", "embeddings": "embeddings"}
DEFAULT_API_VERSION = "2024-10-21"


class AzureProvider(Provider):
    name = "azure"
    aliases = ("azure_openai",)
    requires_api_base = True

    def url(self, target: Target, operation: str) -> str:
        deployment = quote(target.upstream_model, safe="")
        version = quote(target.api_version or DEFAULT_API_VERSION, safe="")
        return (f"{self.base(target)}/openai/deployments/{deployment}/{PATHS[operation]}"
                f"?api-version={version}")

    def auth_headers(self, target: Target) -> dict:
        return {"api-key": target.api_key} if target.api_key else {}
