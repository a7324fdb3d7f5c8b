"""The provider registry: adding a provider is one module and one line here."""
from webapp import operations
from webapp.providers.anthropic import AnthropicProvider
from webapp.providers.azure import AzureProvider
from webapp.providers.base import Field, Provider, Target
from webapp.providers.bedrock import BedrockProvider
from webapp.providers.mistral import MistralProvider
from webapp.providers.openai import OpenAIProvider
from webapp.providers.vertex import GeminiProvider, VertexAIProvider

_PROVIDERS: dict[str, Provider] = {}
_FIELDS: dict[str, Field] = {}


def register(provider: Provider):
    for operation in provider.operations:
        operations.get(operation)  # a provider cannot offer an operation nobody registered
    for declared in provider.fields:
        known = _FIELDS.setdefault(declared.name, declared)
        if known.schema() != declared.schema():
            raise ValueError(f"{provider.name} declares {declared.name} unlike another provider")
    for name in (provider.name, *provider.aliases):
        _PROVIDERS[name] = provider


register(OpenAIProvider())
register(AzureProvider())
register(AnthropicProvider())
register(MistralProvider())
register(BedrockProvider())
register(VertexAIProvider())
register(GeminiProvider())


def names() -> list[str]:
    return sorted(_PROVIDERS)


def registered() -> list[Provider]:
    """Each provider once, in the order of registration."""
    return list({id(p): p for p in _PROVIDERS.values()}.values())


def get(name: str) -> Provider | None:
    return _PROVIDERS.get(name)


def secret_names() -> frozenset[str]:
    return frozenset(name for name, declared in _FIELDS.items() if declared.secret)


def declared_fields() -> dict[str, Field]:
    """Every litellm_params field some provider declares, by name."""
    return dict(_FIELDS)


def split_model(params: dict) -> tuple[str | None, str]:
    """(provider name, upstream model) from litellm_params, as LiteLLM reads them."""
    model = params["model"]
    prefix, slash, rest = model.partition("/")
    explicit = params.get("custom_llm_provider")
    if slash and prefix in _PROVIDERS:
        return explicit or prefix, rest
    return explicit or (prefix if slash else None), model


def for_params(params: dict) -> tuple[Provider | None, str]:
    """The provider that serves these params and the model name it sends upstream.

    `openai` with an `api_version` is an Azure deployment call: that is what LiteLLM's own
    example on the team-model page means (LiteLLM itself ignores api_version there)."""
    name, model = split_model(params)
    provider = _PROVIDERS.get(name or "openai")
    if provider is not None and provider.name == "openai" and params.get("api_version"):
        provider = _PROVIDERS["azure"]
    return provider, model


def target_for(params: dict, secrets: dict, deployment_id: str = "", public_name: str = "",
               team_id: str | None = None, mode: str | None = None,
               max_output_tokens: int | None = None) -> Target:
    """The one way a Target is made: from stored (or drafted) params and decrypted secrets."""
    provider, model = for_params(params)
    return Target(
        deployment_id=deployment_id, public_name=public_name, team_id=team_id,
        provider=provider, upstream_model=model, api_base=params.get("api_base"),
        api_version=params.get("api_version"), api_key=secrets.get("api_key"),
        organization=params.get("organization"), timeout=params.get("timeout"),
        stream_timeout=params.get("stream_timeout"), max_retries=params.get("max_retries"),
        params=params, secrets=secrets, mode=mode,
        max_output_tokens=max_output_tokens)


__all__ = ["Field", "Provider", "Target", "declared_fields", "for_params", "get", "names",
           "register", "registered", "split_model", "target_for"]
