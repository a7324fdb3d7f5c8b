"""OAuth2 access tokens for Vertex AI from a deployment's service-account key. google-auth signs
the JWT bearer grant; the grant goes to the key's token_uri through Teamgate's own upstream
client, so the egress rules hold for it as for any upstream. Tokens are cached per key until
shortly before they expire, and one refresh at a time runs per key."""
import hashlib
import json
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

import google.auth.exceptions
import google.auth.transport
from flask import current_app
from google.oauth2 import service_account

from webapp.errors import APIError
from webapp.upstream import failures, transport
from webapp.upstream.egress import check_api_base

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_MARGIN = timedelta(minutes=5)  # a token this close to expiry is replaced before use
MAX_KEYS = 256  # cached service-account keys; the least recently used goes first
TOKEN_READ_TIMEOUT = 30.0
PARAM = "litellm_params.vertex_credentials"


class _Answer(google.auth.transport.Response):
    def __init__(self, answer: transport.Answer):
        self._status, self._headers, self._data = answer.status, answer.headers, answer.content

    @property
    def status(self):
        return self._status

    @property
    def headers(self):
        return self._headers

    @property
    def data(self):
        return self._data


class TeamgateRequest(google.auth.transport.Request):
    """google-auth's HTTP hook over Teamgate's client: POST only (all a token grant needs),
    the URL checked like an api_base, connections opened under the same allow list."""

    def __init__(self, client: transport.Client, allow: str, connect_timeout: float,
                 read_timeout: float = TOKEN_READ_TIMEOUT):
        self.client, self.allow = client, allow
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        if method != "POST":
            raise google.auth.exceptions.TransportError(f"{method} is not sent for tokens.")
        try:
            check_api_base(url, self.allow)
        except APIError as refused:
            raise APIError(400, f"The service account's token_uri is refused: "
                                f"{refused.message}", param=PARAM) from None
        try:
            answer = self.client.post(url, dict(headers or {}), body or b"",
                                      self.connect_timeout, self.read_timeout, self.allow)
            return _Answer(answer)  # reads the whole answer, which closes it
        except transport.TransportError as exc:
            raise google.auth.exceptions.TransportError(str(exc)) from exc


def credentials_from(text: str) -> service_account.Credentials:
    """A service-account key's credentials, or a 400 that names what is wrong (never the key)."""
    try:
        info = json.loads(text)
    except (TypeError, ValueError):
        info = None
    if not isinstance(info, dict):
        raise APIError(400, "vertex_credentials must be a service-account key as JSON (the key "
                            "file's contents, not its path).", param=PARAM)
    if info.get("type") != "service_account":
        raise APIError(400, "vertex_credentials must be a service-account key "
                            "(\"type\": \"service_account\").", param=PARAM)
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    except (ValueError, TypeError):
        raise APIError(400, "vertex_credentials lacks client_email, token_uri or a readable "
                            "private_key.", param=PARAM) from None


class _Key:
    __slots__ = ("credentials", "lock")

    def __init__(self, credentials: service_account.Credentials):
        self.credentials, self.lock = credentials, threading.Lock()

    def fresh(self) -> bool:
        expiry = self.credentials.expiry  # naive UTC, as google-auth keeps it
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return bool(self.credentials.token) and expiry is not None \
            and expiry - now > REFRESH_MARGIN


def _refresh_failed(exc: Exception) -> APIError:
    if isinstance(exc, google.auth.exceptions.RefreshError):
        detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        if exc.retryable:
            return APIError(502, f"Google's token endpoint failed: {detail[:200]}")
        return APIError(401, f"Google refused the deployment's service account: "
                             f"{detail[:200]}", error_type="authentication_error")
    cause = exc.__cause__
    if isinstance(cause, transport.TransportError):
        return failures.from_exception(cause)
    return APIError(502, "Could not reach Google's token endpoint.")


class TokenSource:
    """Access tokens per service-account key, kept until REFRESH_MARGIN before expiry."""

    def __init__(self, request: google.auth.transport.Request):
        self.request = request
        self._keys: OrderedDict[str, _Key] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, text: str) -> _Key:
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            key = self._keys.get(digest)
            if key is not None:
                self._keys.move_to_end(digest)
                return key
        key = _Key(credentials_from(text))  # parsing the private key: outside the lock
        with self._lock:
            key = self._keys.setdefault(digest, key)
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        return key

    def token(self, text: str) -> str:
        key = self._key(text)
        with key.lock:
            if not key.fresh():
                try:
                    key.credentials.refresh(self.request)
                except (google.auth.exceptions.RefreshError,
                        google.auth.exceptions.TransportError) as exc:
                    raise _refresh_failed(exc) from None
            return key.credentials.token


def app_tokens() -> TokenSource:
    """The app's token source, made on first use over the app's upstream client."""
    extensions, config = current_app.extensions, current_app.config
    source = extensions.get("teamgate.google_tokens")
    if source is None:
        request = TeamgateRequest(extensions["teamgate.http"],
                                  config.get("TEAMGATE_UPSTREAM_ALLOW", ""),
                                  config["UPSTREAM_CONNECT_TIMEOUT"])
        source = extensions.setdefault("teamgate.google_tokens", TokenSource(request))
    return source
