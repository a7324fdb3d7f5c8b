"""The provider registry: adding a provider is one module and one line here."""
from webapp.providers.anthropic import AnthropicProvider
from webapp.providers.azure import AzureProvider
from webapp.providers.base import Provider, Target
from webapp.providers.openai import OpenAIProvider

_PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider):
    for name in (provider.name, *provider.aliases):
        _PROVIDERS[name] = provider


register(OpenAIProvider())
register(AzureProvider())
register(AnthropicProvider())


def names() -> list[str]:
    return sorted(_PROVIDERS)


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


__all__ = ["Provider", "Target", "for_params", "names", "register", "split_model"]
