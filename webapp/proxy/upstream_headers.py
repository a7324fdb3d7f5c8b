"""Which of an upstream's answer headers the caller gets, on a JSON answer, a stream or an error
alike: the ids a provider's support asks for, its rate-limit state and its retry hints, which the
SDKs read (openai's `_request_id` is `x-request-id`, anthropic's is `request-id`; both time their
retries by `retry-after-ms` and `retry-after`). Nothing else: no cookie, no hop-by-hop or framing
header (the caller's answer has its own length), no organization or other account detail."""
from webapp.crypto import mask
from webapp.proxy.masking import MIN_LENGTH

RELAYED = frozenset({"x-request-id", "request-id", "openai-processing-ms", "retry-after",
                     "retry-after-ms"})
RELAYED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
REQUEST_ID = "x-request-id"


def relayed(headers: dict, api_key: str | None) -> dict:
    """The upstream's headers the caller may read (names in lower case, as the transport gives
    them), the team's key masked should the upstream put it in one."""
    chosen = {name: value for name, value in headers.items()
              if name in RELAYED or name.startswith(RELAYED_PREFIXES)}
    if api_key and len(api_key) >= MIN_LENGTH:  # masking.Secret's rule, without making one
        for name, value in chosen.items():
            if api_key in value:
                chosen[name] = value.replace(api_key, mask(api_key))
    return chosen


def for_caller(headers: dict, request_id: str, api_key: str | None) -> dict:
    """`relayed`, with Teamgate's own request id (its request-log row's) as `x-request-id` when
    the upstream gave none, so that every answer carries an id a user can quote."""
    chosen = relayed(headers, api_key)
    chosen.setdefault(REQUEST_ID, request_id)
    return chosen
