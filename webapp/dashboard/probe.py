"""The "Test" button: one tiny chat call to a deployment's upstream through the same forwarding
path and checks as a proxied call, reported as latency plus the answer or the failure in plain
words. Nothing else the upstream sends (error messages, headers, bodies) reaches the page: a
host could echo anything there."""
import time
from dataclasses import dataclass, replace

from webapp.errors import APIError
from webapp.extensions import db
from webapp import providers
from webapp.proxy import forwarding
from webapp.upstream.failures import invalid_body
from webapp.providers.base import Target
from webapp.services import credentials, schemas
from webapp.upstream import egress
from webapp.services.validation import validate

DRAFT_TIMEOUT = 30.0  # seconds: a test call of a model not saved yet
PROBE_BODY = {"messages": [{"role": "user", "content": "Reply with the single word: OK"}],
              "max_tokens": 16}
MAX_ANSWER = 300  # characters of a successful answer shown
PLAIN = {
    401: "The provider refused the key.",
    429: "The provider is rate limiting this deployment; try again later.",
    502: "The upstream could not be reached, failed, or did not answer like a chat model.",
    504: "The upstream did not answer in time.",
}


@dataclass
class ProbeResult:
    ok: bool
    latency_ms: int
    text: str  # the answer, or the error in plain words
    status: int = 200


def _answer(payload: dict) -> str:
    try:
        text = payload["choices"][0]["message"]["content"] or "(empty answer)"
    except (KeyError, IndexError, TypeError):
        return "(the upstream answered without a message)"
    return text if isinstance(text, str) else "(the upstream answered without a message)"


def plain_words(error: APIError) -> str:
    """What a failed call means, without the upstream's own words."""
    if error.param:  # Teamgate's own checks name a field; their words are Teamgate's
        return error.message
    return PLAIN.get(error.status, PLAIN[502] if error.status >= 500 else (
        "The upstream refused the test call; check the upstream model, the API version and "
        "the API base."))


def run(target: Target) -> ProbeResult:
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        egress.check_destination(target)
        call = target.provider.prepare(target, "chat", dict(PROBE_BODY))
    except APIError as error:
        return ProbeResult(False, elapsed(), error.message, error.status)
    db.session.close()  # no transaction held across the upstream call
    try:
        sent = forwarding.send(call, target, stream=False)
        try:
            payload = target.provider.translate_response("chat", sent.response.json())
        except ValueError:
            raise invalid_body() from None
        finally:
            sent.response.close()
    except APIError as error:
        return ProbeResult(False, elapsed(), plain_words(error), error.status)
    return ProbeResult(True, elapsed(), _answer(payload)[:MAX_ANSWER])


def draft_target(principal, team_id: str | None, body: dict) -> Target:
    """A target for a model not saved yet, from the registration form's body. A named key must
    be bound to the draft's host (its first use binds it: commit before sending)."""
    validate(body, schemas.MODEL_NEW)
    params = body["litellm_params"]
    provider, model = providers.for_params(params)
    if not model:
        raise APIError(400, "Give the upstream model.", param="litellm_params.model")
    if provider is None:
        raise APIError(400, "Choose a known provider.", param="litellm_params.custom_llm_provider")
    if params.get("api_base"):
        egress.check_api_base(params["api_base"])
    secrets = {name: value for name, value in params.items() if name in providers.secret_names()}
    if "litellm_credential_name" in params:
        credential = credentials.by_name(team_id, params["litellm_credential_name"])
        credentials.ensure_bound(principal, credential, credentials.destination(params))
        secrets["api_key"] = credentials.secret_of(credential)
    drafted = {name: value for name, value in params.items() if name not in secrets}
    target = providers.target_for(drafted, secrets, deployment_id="draft",
                                  public_name=body["model_name"], team_id=team_id)
    return replace(target, timeout=DRAFT_TIMEOUT, stream_timeout=None, max_retries=0)
