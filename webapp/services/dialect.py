"""LiteLLM's management dialect: the fields each route's LiteLLM request model declares beyond
those Teamgate acts on, and what becomes of them. Kept fields are stored in the row's `extra`
and returned where LiteLLM returns them; ignored ones too, and they are also named in the answer
header x-teamgate-ignored-fields, so nothing is dropped without a word. A field LiteLLM does not
know either is a 400 that names the closest known field. Refused fields are LiteLLM's but would
weaken Teamgate (a caller-chosen key, secrets kept in clear): a 400 that says why."""
import difflib

from flask import jsonify

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Team
from webapp.services.validation import json_body, validate

IGNORED_HEADER = "x-teamgate-ignored-fields"


def _nullable(*types: str) -> dict:
    return {"type": [*types, "null"]}


OBJECT, LIST, TEXT = _nullable("object"), _nullable("array"), _nullable("string")
NUMBER, INTEGER, FLAG = _nullable("number"), _nullable("integer"), _nullable("boolean")

# GenerateRequestBase (keys and users) beyond what Teamgate enforces
REQUEST_BASE = {
    "spend": NUMBER, "agent_id": TEXT, "allowed_cache_controls": LIST, "config": OBJECT,
    "permissions": OBJECT, "model_max_budget": OBJECT, "guardrails": LIST, "policies": LIST,
    "prompts": LIST, "aliases": OBJECT, "object_permission": OBJECT,
}
# enforced for keys and teams (services/limits.py), only stored for users
PER_MODEL_LIMITS = {"model_rpm_limit": OBJECT, "model_tpm_limit": OBJECT}
# KeyRequestBase
KEY_BASE = {
    **REQUEST_BASE, "budget_id": TEXT, "tags": LIST, "enforced_params": LIST,
    "allowed_routes": LIST, "allowed_passthrough_routes": LIST,
    "allowed_vector_store_indexes": LIST, "rpm_limit_type": TEXT, "tpm_limit_type": TEXT,
    "router_settings": OBJECT, "access_group_ids": LIST,
}
KEY_GENERATE = {**KEY_BASE, "send_invite_email": FLAG, "key_type": TEXT, "auto_rotate": FLAG,
                "rotation_interval": TEXT, "organization_id": TEXT, "project_id": TEXT}
KEY_UPDATE = {**KEY_BASE, "temp_budget_increase": NUMBER, "temp_budget_expiry": TEXT,
              "auto_rotate": FLAG, "rotation_interval": TEXT, "organization_id": TEXT}
KEY_REGENERATE = {**KEY_GENERATE, "spend": NUMBER, "grace_period": TEXT}

TEAM_UPDATE = {
    "organization_id": TEXT, "router_settings": OBJECT, "access_group_ids": LIST, "tags": LIST,
    "guardrails": LIST, "policies": LIST, "prompts": LIST, "object_permission": OBJECT,
    "allowed_passthrough_routes": LIST,
    "team_member_key_duration": TEXT, "allowed_vector_store_indexes": LIST,
    "enforced_batch_output_expires_after": OBJECT, "enforced_file_expires_after": OBJECT,
}
TEAM_NEW = {**TEAM_UPDATE, "admins": LIST, "members": LIST, "team_member_permissions": LIST,
            "rpm_limit_type": TEXT, "tpm_limit_type": TEXT}

USER_BASE = {**REQUEST_BASE, **PER_MODEL_LIMITS, "blocked": FLAG}
# on /user/new these make the user's first key; on /user/update no key is made
USER_UPDATE = {**USER_BASE, "key_alias": TEXT, "duration": TEXT, "team_id": TEXT}
USER_NEW = {**USER_BASE, "send_invite_email": FLAG, "sso_user_id": TEXT,
            "organizations": LIST}

MEMBER_UPDATE = {"tpm_limit": INTEGER, "rpm_limit": INTEGER}

# route (the view's name) -> LiteLLM fields Teamgate stores without acting on them
IGNORED = {
    "key_generate": KEY_GENERATE, "key_update": KEY_UPDATE, "key_regenerate": KEY_REGENERATE,
    "team_new": TEAM_NEW, "team_update": TEAM_UPDATE,
    "user_new": USER_NEW, "user_update": USER_UPDATE,
    "team_member_update": MEMBER_UPDATE,
}

_GENERATED = ("Teamgate generates every key itself (sk- and 128 random bits), so that no key "
              "can be guessed; leave {field} out and use the key in the answer.")
_SECRETS = ("Teamgate does not read provider keys from a secret manager; register each model "
            "with its own key (or a provider key on the dashboard), which Teamgate encrypts.")
REFUSED = {
    "key_generate": {"key": _GENERATED.format(field="key")},
    "key_regenerate": {"new_key": _GENERATED.format(field="new_key"),
                       "new_master_key": "The master key is TEAMGATE_MASTER_KEY; change it "
                                         "in the environment (or instance/master.key)."},
    "user_new": {"key": _GENERATED.format(field="key")},
    "team_new": {"secret_manager_settings": _SECRETS},
    "team_update": {"secret_manager_settings": _SECRETS},
}

# fields whose null means their empty value, as LiteLLM reads them
EMPTY_FOR_NULL = {"metadata": dict, "models": list, "members_with_roles": list,
                  "model_aliases": dict, "teams": list, "blocked": bool}


def ignored_schema(route: str) -> dict:
    """The JSON schemas of a route's ignored fields, for services/schemas.py."""
    return dict(IGNORED.get(route, {}))


def _refuse_unknown(body: dict, schema: dict, route: str):
    known = set(schema.get("properties", {}))
    refused = REFUSED.get(route, {})
    for name in sorted(body):
        if name in refused:
            raise APIError(400, f"{name}: {refused[name]}", param=name)
    unknown = sorted(set(body) - known)
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]}?" if close else ""
    raise APIError(400, f"Unknown field: {name}; neither Teamgate nor LiteLLM knows it.{hint}",
                   param=name)


def parse(schema: dict, route: str, body: dict | None = None) -> dict:
    """The request body of a management route: unknown and refused fields answered with a 400,
    nulls read as LiteLLM reads them, then checked against the route's schema."""
    body = json_body() if body is None else body
    _refuse_unknown(body, schema, route)
    for name, empty in EMPTY_FOR_NULL.items():
        if name in body and body[name] is None and name in schema.get("properties", {}):
            body[name] = empty()
    return validate(body, schema)


def ignored(route: str, body: dict) -> list[str]:
    return sorted(set(body) & set(IGNORED.get(route, {})))


def kept(route: str, body: dict, current: dict | None = None) -> dict:
    """The row's `extra` after this body: the route's ignored fields sent replace, null removes,
    omitted stay."""
    extra = dict(current or {})
    for name in ignored(route, body):
        if body[name] is None:
            extra.pop(name, None)
        else:
            extra[name] = body[name]
    return extra


def answer(payload, route: str, body: dict, also: list[str] = ()):
    """The JSON answer, naming the LiteLLM fields that were stored but not acted on."""
    response = jsonify(payload)
    names = sorted(set(ignored(route, body)) | set(also))
    if names:
        response.headers[IGNORED_HEADER] = ", ".join(names)
    return response


def _listed(names) -> str:
    return "[" + ", ".join(f"'{name}'" for name in names) + "]"


def model_access_denied(principal, resolution, key_restricted: str,
                        team_restricted: str) -> APIError | None:
    """LiteLLM's 401 for a key or team not allowed a model (its words, so scripts that match
    them keep working); None when the name simply did not resolve. A key's list is checked
    before any lookup and a team's only against global models, so neither says whether
    another team has a model of that name."""
    if resolution.how == key_restricted:
        subject, models = "key", principal.key_models
    elif resolution.how == team_restricted:
        team = db.session.get(Team, principal.team_id)
        subject, models = "team", (team.models if team is not None else [])
    else:
        return None
    return APIError(401, f"{subject} not allowed to access model. This {subject} can only "
                         f"access models={_listed(models)}. Tried to access {resolution.name}",
                    param="model", error_type=f"{subject}_model_access_denied")
