"""Key authentication for the JSON and proxy routes (cookies are ignored there): the key in
`Authorization: Bearer`, or in the header Anthropic's clients (`x-api-key`) or Azure OpenAI's
(`api-key`) send it in."""
from flask import request

from webapp.auth.principal import MASTER, Principal
from webapp.crypto import is_master_key
from webapp.errors import APIError
from webapp.services import keys

KEY_QUERY_PARAMETERS = ("key", "api_key", "api-key", "token", "access_token")


def _presented_key() -> str:
    # request.args parses the query string; most calls have none
    if request.query_string and request.path != "/key/info" and \
            any(name in request.args for name in KEY_QUERY_PARAMETERS):
        raise APIError(401, "Keys are accepted only in the Authorization header, "
                            "never in the query string.")
    header = request.headers.get("Authorization")
    if header is None:
        # the header Anthropic's clients send (x-api-key) and Azure OpenAI's (api-key)
        key = request.headers.get("x-api-key") or request.headers.get("api-key") or ""
        scheme = "bearer"
    else:
        scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(401, "Missing API key. Send 'Authorization: Bearer <key>' (or the key "
                            "in x-api-key or api-key).")
    return key.strip()


def authenticate_bearer() -> Principal:
    key = _presented_key()
    if is_master_key(key):
        return MASTER
    record = keys.lookup(key)
    if record is None:
        raise APIError(401, "Invalid API key: it is unknown, deleted, blocked or expired.")
    return Principal(
        kind="team_key" if record.team_id else "personal_key",
        actor=record.user_id or f"key:{record.key_alias or record.key_name}",
        team_id=record.team_id,
        key_token=record.token,
        key_name=record.key_name,
        key_models=record.models,
        key_limits=record.limits,
        user_id=record.user_id,
    )
