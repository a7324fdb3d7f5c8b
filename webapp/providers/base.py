"""What every provider offers: where a call goes, how it authenticates, how answers come back."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A deployment resolved for one call: everything forwarding needs, the key decrypted."""
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


@dataclass
class PreparedCall:
    url: str
    headers: dict
    body: dict


class Provider:
    name = ""
    aliases: tuple = ()
    default_api_base = ""
    requires_api_base = False
    # the upstream already speaks OpenAI's SSE: relay its bytes untouched
    stream_passthrough = True
    # the upstream's JSON answer is already OpenAI's: relay its bytes untouched
    response_passthrough = True

    def base(self, target: Target) -> str:
        return (target.api_base or self.default_api_base).rstrip("/")

    def url(self, target: Target, operation: str) -> str:
        raise NotImplementedError

    def auth_headers(self, target: Target) -> dict:
        raise NotImplementedError

    def prepare(self, target: Target, operation: str, body: dict) -> PreparedCall:
        headers = {"Content-Type": "application/json", **self.auth_headers(target)}
        return PreparedCall(self.url(target, operation), headers,
                            {**body, "model": target.upstream_model})

    def translate_response(self, operation: str, payload: dict) -> dict:
        """The upstream's JSON answer in OpenAI's shape."""
        return payload

    def translate_stream_line(self, line: bytes) -> bytes | None:
        """One upstream SSE line as OpenAI SSE bytes; None drops it."""
        return line
