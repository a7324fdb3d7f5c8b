"""What can go wrong below HTTP on an upstream call; `failures` maps each kind to the caller's
error, so these carry facts (which limit, which TLS check), never messages for the caller."""


class TransportError(Exception):
    """An upstream call that failed below HTTP."""


class ConnectFailed(TransportError):
    """Refused, reset or unreachable before an answer began; nothing reached the upstream's
    application unless `sent` is true."""

    def __init__(self, message: str, sent: bool = False):
        super().__init__(message)
        self.sent = sent


class ProxyFailed(ConnectFailed):
    """The operator's egress proxy could not be reached (`status` 0) or refused the tunnel
    (`status`, e.g. 403, 407 or 502); nothing reached the upstream."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class ConnectTimedOut(TransportError):
    pass


class ReadTimedOut(TransportError):
    pass


class TLSFailed(TransportError):
    """The TLS handshake failed; `why` is "expired", "not-yet-valid", "untrusted", "name" (the
    certificate is for another host), "not-tls" (the peer answered in plain text) or
    "handshake" (anything else)."""

    def __init__(self, message: str, why: str = "handshake"):
        super().__init__(message)
        self.why = why


class BrokenAnswer(TransportError):
    """The connection closed mid-answer, or the answer is not HTTP."""


class AnswerTooLarge(TransportError):
    """The upstream's answer went past one of Teamgate's limits: `part` is "head", "body" or
    "line" (a line of an event stream), `limit` the cap in bytes."""

    def __init__(self, part: str, limit: int):
        super().__init__(f"the answer's {part} is larger than {limit} bytes")
        self.part, self.limit = part, limit


class InvalidRequest(TransportError):
    """A header that cannot be sent (a line break in a key would inject headers)."""


class Stale(Exception):
    """A pooled connection the upstream had closed; the request is sent again on a new one."""
