"""The one mapping from upstream failures to what the caller gets (the table in docs/security.md)."""
import json

from webapp.errors import APIError
from webapp.proxy import transport
from webapp.proxy.masking import Secret

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


def retry_after(response: transport.Answer) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def is_retryable(response: transport.Answer) -> bool:
    if response.status not in RETRYABLE_STATUSES:
        return False
    wait = retry_after(response)
    if wait is None:
        return response.status != 429
    return wait <= MAX_RETRY_AFTER


def from_status(response: transport.Answer, secret: Secret | None) -> APIError:
    status = response.status
    if 300 <= status < 400:
        return APIError(502, f"The upstream answered with a redirect ({status}); Teamgate does "
                             "not follow upstream redirects.")
    message = upstream_message(response, secret)
    if status in (401, 403):
        return APIError(401, f"The provider refused the team's key ({status}): {message}",
                        error_type="authentication_error")
    if status == 429:
        headers = {"Retry-After": response.headers["retry-after"]} \
            if "retry-after" in response.headers else {}
        return APIError(429, f"The provider is rate limiting this deployment: {message}",
                        headers=headers)
    if status >= 500:
        return APIError(502, f"The upstream failed with status {status}: {message}")
    if status in PASSED_THROUGH:
        return APIError(status, message or f"The upstream refused the request ({status}).",
                        error_type="invalid_request_error")
    return APIError(400, f"The upstream refused the request ({status}): {message}")


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
