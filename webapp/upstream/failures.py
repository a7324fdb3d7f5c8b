"""The one mapping from upstream failures to what the caller gets (the table in docs/security.md)."""
import email.utils
import json
import math
import time

from webapp.errors import APIError
from webapp.upstream import transport
from webapp.upstream.masking import Secret
from webapp.upstream.headers import relayed

RETRYABLE_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER = 2.0  # seconds; a longer Retry-After is relayed to the caller instead
PASSED_THROUGH = (400, 404, 409, 413, 422)
# why a TLS handshake failed -> what the caller reads (never the certificate itself)
TLS_FAILURES = {
    "expired": "The upstream's TLS certificate has expired.",
    "not-yet-valid": "The upstream's TLS certificate is not valid yet.",
    "untrusted": "The upstream's TLS certificate is not signed by a trusted authority (an "
                 "operator can add one with TEAMGATE_UPSTREAM_CA_FILE).",
    "name": "The upstream's TLS certificate does not match the host name.",
    "not-tls": "The upstream does not speak TLS on that port (is its api_base http:// "
               "rather than https://?).",
}
# a limit on upstream answers: what went past it, and the setting an operator can raise
LIMITED_PARTS = {
    "head": ("its status line and headers are", "TEAMGATE_UPSTREAM_MAX_HEAD_BYTES"),
    "body": ("its body is", "TEAMGATE_UPSTREAM_MAX_BODY_BYTES"),
    "line": ("a line of its event stream is", "TEAMGATE_UPSTREAM_MAX_SSE_LINE_BYTES"),
}


def upstream_message(response: transport.Answer, secret: Secret | None) -> str:
    """The upstream's own message, every secret of the deployment masked should it echo one."""
    try:
        payload = response.json()
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        message = error.get("message") if isinstance(error, dict) else error
        message = message if isinstance(message, str) else json.dumps(message)
    except ValueError:
        message = response.text[:300]
    message = message.strip() or response.reason or ""
    return secret.scrub_text(message) if secret is not None else message


def retry_after(headers: dict) -> float | None:
    """The wait an upstream asks for, in seconds: `retry-after-ms` (OpenAI's), else
    `retry-after` as seconds or as an HTTP date; None when it asks for none we can read."""
    for name, unit in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            wait = float(headers.get(name, "")) / unit
        except ValueError:
            continue
        if math.isfinite(wait) and wait >= 0:
            return wait
    try:
        when = email.utils.parsedate_tz(headers.get("retry-after", ""))
        return max(email.utils.mktime_tz(when) - time.time(), 0.0) if when else None
    except (TypeError, ValueError, OverflowError):
        return None


def is_retryable(status: int, wait: float | None) -> bool:
    """Whether an answer with this status, and the wait it asks for, is sent again: a 429 only
    when it says when, anything only when that is soon."""
    if status not in RETRYABLE_STATUSES:
        return False
    if wait is None:
        return status != 429
    return wait <= MAX_RETRY_AFTER


def from_status(response: transport.Answer, secret: Secret | None) -> APIError:
    """The caller's error for an upstream's failed answer, with the upstream's request id,
    rate-limit state and retry hints (upstream_headers.RELAYED)."""
    status = response.status
    headers = relayed(response.headers, secret)
    if 300 <= status < 400:
        return APIError(502, f"The upstream answered with a redirect ({status}); Teamgate does "
                             "not follow upstream redirects.", headers=headers)
    message = upstream_message(response, secret)
    if status in (401, 403):
        return APIError(401, f"The provider refused the team's key ({status}): {message}",
                        error_type="authentication_error", headers=headers)
    if status == 429:
        return APIError(429, f"The provider is rate limiting this deployment: {message}",
                        headers=headers)
    if status == 503 and retry_after(response.headers) is not None:
        # the upstream says when to come back: the caller (its SDK) can wait as told
        return APIError(503, f"The upstream is unavailable for now: {message}",
                        error_type="upstream_error", headers=headers)
    if status >= 500:  # 508 (a loop another Teamgate refused) included
        return APIError(502, f"The upstream failed with status {status}: {message}",
                        headers=headers)
    if status in PASSED_THROUGH:
        return APIError(status, message or f"The upstream refused the request ({status}).",
                        error_type="invalid_request_error", headers=headers)
    return APIError(400, f"The upstream refused the request ({status}): {message}",
                    headers=headers)


def from_exception(exc: transport.TransportError) -> APIError:
    if isinstance(exc, (transport.ConnectTimedOut, transport.ReadTimedOut)):
        return APIError(504, "The upstream did not answer in time.", error_type="timeout")
    if isinstance(exc, transport.TLSFailed):
        return APIError(502, TLS_FAILURES.get(exc.why, "TLS handshake with the upstream failed."))
    if isinstance(exc, transport.ProxyFailed):
        if not exc.status:
            return APIError(502, "Could not reach the egress proxy (TEAMGATE_EGRESS_PROXY).")
        return APIError(502, f"The egress proxy (TEAMGATE_EGRESS_PROXY) refused the tunnel to "
                             f"the upstream ({exc.status}).")
    if isinstance(exc, transport.ConnectFailed):
        return APIError(502, "Could not connect to the upstream (connection refused, reset or "
                             "DNS failure).")
    if isinstance(exc, transport.AnswerTooLarge):
        what, setting = LIMITED_PARTS[exc.part]
        return APIError(502, f"Teamgate refused the upstream's answer: {what} larger than the "
                             f"limit of {_size(exc.limit)} ({setting}).")
    if isinstance(exc, transport.BrokenAnswer):
        return APIError(502, "The upstream connection broke while sending its answer.")
    if isinstance(exc, transport.InvalidRequest):
        return APIError(502, f"Teamgate could not send the call: {exc}. Update the model's "
                             "settings (api_key, organization).")
    return APIError(502, f"The upstream call failed ({exc.__class__.__name__}).")


def _size(count: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def invalid_body() -> APIError:
    return APIError(502, "The upstream answered with something that is not valid JSON.")
