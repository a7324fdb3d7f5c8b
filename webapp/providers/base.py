"""What every provider declares and offers: its `litellm_params` fields, where a call goes, how
it authenticates, how answers come back. The API's schema, the dashboard's form, the URL preview
and the masking of secrets are all read from these declarations."""
from dataclasses import dataclass, field

from webapp.providers import openai_shape as shape


@dataclass(frozen=True)
class Field:
    """One `litellm_params` field a provider reads."""
    name: str
    label: str
    help: str = ""
    kind: str = "string"  # "string", "url" or "secret"
    required: bool = False
    max_length: int = 2048

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def schema(self) -> dict:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length,
                "description": f"Use 1 to {self.max_length} characters."}


def api_key_field() -> Field:
    return Field("api_key", "Or paste a key", "Write-only: stored encrypted, shown masked from "
                 "then on.", kind="secret", max_length=4096)


@dataclass(frozen=True)
class Target:
    """A deployment resolved for one call: everything forwarding needs, the secrets decrypted."""
    deployment_id: str
    public_name: str
    team_id: str | None
    provider: "Provider"
    upstream_model: str
    api_base: str | None
    api_version: str | None
    api_key: str | None
    organization: str | None
    timeout: float | None
    stream_timeout: float | None
    max_retries: int | None
    # every stored litellm_param that is not a secret, and the decrypted secrets by field name
    params: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)
    mode: str | None = None  # model_info.mode: which operations the deployment serves
    # the model's own output limit (model_info, else the price map), for providers that need a
    # max_tokens the caller did not give (Anthropic)
    max_output_tokens: int | None = None


@dataclass
class PreparedCall:
    url: str
    headers: dict
    body: dict | None
    method: str = "POST"


class Provider:
    name = ""
    label = ""  # what the dashboard's provider list shows
    model_help = "As the provider names it, for example gpt-4o."
    aliases: tuple = ()
    default_api_base = ""
    # the litellm_params this provider reads, beyond those every deployment has (model, timeouts)
    fields: tuple[Field, ...] = ()
    operations: tuple[str, ...] = ("chat", "embeddings")
    # the upstream speaks the operations' own wire formats (OpenAI's): its answers and streams
    # are relayed as they come; relays() may decide per operation
    passthrough = True
    # a translated stream: translate_stream reads the stream's lines (each refused past
    # TEAMGATE_UPSTREAM_MAX_SSE_LINE_BYTES by the transport) rather than its raw chunks (an
    # AWS event stream, say, has a framing of its own)
    stream_lines = False

    def takes_stream_usage(self, target: Target) -> bool:
        """Whether the upstream takes `stream_options: {"include_usage": true}` on a chat
        stream. Where it does, Teamgate asks for usage on every stream (and strips the usage
        chunk again for a caller that did not ask); where it does not, the field is never
        sent. Only providers whose chat streams are relayed ask."""
        return False

    def stream_usage_asked(self, target: Target, operation: str) -> bool:
        """Whether Teamgate asks this call's upstream for the usage chunk itself."""
        return operation == "chat" and self.relays(operation) and self.takes_stream_usage(target)

    def offers(self, target: Target, operation: str) -> bool:
        """Whether this deployment's upstream serves `operation` itself (else it is reached
        through the operation's `via`, or refused)."""
        return operation in self.operations

    def relays(self, operation: str) -> bool:
        """Whether the upstream speaks `operation`'s own wire format, so that its answer and
        its stream are relayed as they come (only the key masked) rather than translated."""
        return self.passthrough

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)

    def base(self, target: Target) -> str:
        return (target.api_base or self.default_api_base).rstrip("/")

    def destination(self, target: Target) -> str:
        """The base URL every call of this deployment goes to; its secrets are bound to the
        origin of it."""
        return self.base(target)

    def url(self, target: Target, operation: str) -> str:
        raise NotImplementedError

    def auth_headers(self, target: Target) -> dict:
        raise NotImplementedError

    def prepare(self, target: Target, operation: str, body: dict) -> PreparedCall:
        headers = {"Content-Type": "application/json", **self.auth_headers(target)}
        body = {**body, "model": target.upstream_model}
        if operation == "chat" and self.relays(operation):
            body = shape.with_stream_usage(body, self.takes_stream_usage(target))
        return PreparedCall(self.url(target, operation), headers, body)

    def translate_response(self, operation: str, payload: dict) -> dict:
        """The upstream's JSON answer in OpenAI's shape."""
        return payload

    def translate_stream(self, chunks, model: str = "", outcome=None,
                         include_usage: bool = False):
        """OpenAI SSE events from the stream of an upstream that relays() nothing of this
        operation: its raw chunks, or its lines with stream_lines; token counts and a failure
        go on `outcome`."""
        raise NotImplementedError
