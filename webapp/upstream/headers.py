"""Which of an upstream's answer headers the caller gets, on a JSON answer, a stream or an error
alike: the ids a provider's support asks for, its rate-limit state and its retry hints, which the
SDKs read (openai's `_request_id` is `x-request-id`, anthropic's is `request-id`; both time their
retries by `retry-after-ms` and `retry-after`). Nothing else: no cookie, no hop-by-hop or framing
header (the caller's answer has its own length), no organization or other account detail."""
from webapp.upstream.masking import Secret

RELAYED = frozenset({"x-request-id", "request-id", "openai-processing-ms", "retry-after",
                     "retry-after-ms"})
RELAYED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
REQUEST_ID = "x-request-id"


def relayed(headers: dict, secret: Secret | None) -> dict:
    """The upstream's headers the caller may read (names in lower case, as the transport gives
    them), the deployment's secrets masked should the upstream put one in them."""
    chosen = {name: value for name, value in headers.items()
              if name in RELAYED or name.startswith(RELAYED_PREFIXES)}
    if secret is not None:
        for name, value in chosen.items():
            chosen[name] = secret.scrub_text(value)
    return chosen


def for_caller(headers: dict, request_id: str, secret: Secret | None) -> dict:
    """`relayed`, with Teamgate's own request id (its request-log row's) as `x-request-id` when
    the upstream gave none, so that every answer carries an id a user can quote."""
    chosen = relayed(headers, secret)
    chosen.setdefault(REQUEST_ID, request_id)
    return chosen
