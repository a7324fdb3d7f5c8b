"""JSON schemas of the management routes' bodies (LiteLLM's field names)."""
from webapp import providers
from webapp.services import dialect

NAME = {"type": "string", "minLength": 1, "maxLength": 256,
        "description": "Use 1 to 256 characters."}
IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9_.:-]+$",
              "description": "Use 1 to 128 letters, digits, '-', '_', '.' or ':'."}
NAMES = {"type": "array", "items": NAME}
# null is read as LiteLLM reads it: unset (services/dialect.py)
OPTIONAL_NAMES = {"type": ["array", "null"], "items": NAME}
METADATA = {"type": ["object", "null"]}
OPTIONAL_NUMBER = {"type": ["number", "null"], "minimum": 0}
OPTIONAL_INTEGER = {"type": ["integer", "null"], "minimum": 0}

# LiteLLM's model_rpm_limit / model_tpm_limit: a model name the caller sends -> its limit
PER_MODEL_LIMIT = {"type": ["object", "null"], "maxProperties": 1000,
                   "propertyNames": {"minLength": 1, "maxLength": 256},
                   "additionalProperties": {"type": "integer", "minimum": 0},
                   "description": "Map each model name to a whole number of at least 0."}

LIMITS = {
    "max_budget": OPTIONAL_NUMBER,
    "soft_budget": OPTIONAL_NUMBER,
    "budget_duration": {"type": ["string", "null"]},
    "tpm_limit": OPTIONAL_INTEGER,
    "rpm_limit": OPTIONAL_INTEGER,
    "max_parallel_requests": OPTIONAL_INTEGER,
    "model_rpm_limit": PER_MODEL_LIMIT,
    "model_tpm_limit": PER_MODEL_LIMIT,
}

# litellm_params every deployment may have, whatever its provider
COMMON_PARAMS = {
    "model": NAME,
    "custom_llm_provider": {"type": "string", "minLength": 1, "maxLength": 64},
    "litellm_credential_name": NAME,
    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
    "stream_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
    "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
    "rpm": OPTIONAL_INTEGER,
    "tpm": OPTIONAL_INTEGER,
    "input_cost_per_token": OPTIONAL_NUMBER,
    "output_cost_per_token": OPTIONAL_NUMBER,
    "cache_read_input_token_cost": OPTIONAL_NUMBER,
    "cache_creation_input_token_cost": OPTIONAL_NUMBER,
}

# the common ones and those the providers declare (providers/*.py), secrets among them
LITELLM_PARAMS = {
    "type": "object",
    "required": ["model"],
    "additionalProperties": False,
    "properties": {**COMMON_PARAMS, **{name: declared.schema() for name, declared
                                       in providers.declared_fields().items()}},
}

MODEL_INFO = {
    "type": "object",
    "properties": {
        "team_id": IDENTIFIER,
        "id": IDENTIFIER,
        "mode": {"enum": ["chat", "embedding", "completion", "image_generation", "audio_speech",
                          "audio_transcription", "moderation"]},
        "base_model": NAME,
    },
}

MODEL_NEW = {
    "type": "object",
    "required": ["model_name", "litellm_params"],
    "additionalProperties": False,
    "properties": {"model_name": NAME, "litellm_params": LITELLM_PARAMS, "model_info": MODEL_INFO},
}

MODEL_UPDATE = {
    "type": "object",
    "required": ["model_info"],
    "additionalProperties": False,
    "properties": {
        "model_name": NAME,
        "litellm_params": {**LITELLM_PARAMS, "required": []},
        "model_info": {**MODEL_INFO, "required": ["id"]},
    },
}

MODEL_DELETE = {
    "type": "object", "required": ["id"], "additionalProperties": False,
    "properties": {"id": IDENTIFIER},
}

USER_ID = {"type": "string", "minLength": 1, "maxLength": 36, "pattern": r"^[A-Za-z0-9_.@+-]+$",
           "description": "Use 1 to 36 letters, digits, '-', '_', '.', '@' or '+'."}
EMAIL = {"type": "string", "minLength": 3, "maxLength": 320, "pattern": "@",
         "description": "Give an email address."}
MEMBER_ROLE = {"enum": ["admin", "user"]}

MEMBER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"user_id": USER_ID, "user_email": EMAIL, "role": MEMBER_ROLE},
}

# LiteLLM's budget and limits of each member of a team (the budget: for members without a
# max_budget_in_team of their own)
TEAM_MEMBER_BUDGET = {
    "team_member_budget": OPTIONAL_NUMBER,
    "team_member_budget_duration": LIMITS["budget_duration"],
    "team_member_rpm_limit": OPTIONAL_INTEGER,
    "team_member_tpm_limit": OPTIONAL_INTEGER,
}

# a team's own names for models: alias -> a model name the team can call
MODEL_ALIASES = {"type": ["object", "null"], "additionalProperties": NAME,
                 "propertyNames": {"maxLength": 256, "minLength": 1}}

TEAM_FIELDS = {
    "team_alias": {"type": ["string", "null"], "maxLength": 256},
    "models": OPTIONAL_NAMES,
    "metadata": METADATA,
    "blocked": {"type": ["boolean", "null"]},
    "model_aliases": MODEL_ALIASES,
    **LIMITS,
    **TEAM_MEMBER_BUDGET,
}

TEAM_NEW = {
    "type": "object", "additionalProperties": False,
    "properties": {**dialect.ignored_schema("team_new"), **TEAM_FIELDS,
                   "team_id": {"oneOf": [IDENTIFIER, {"type": "null"}]},
                   "members_with_roles": {"type": ["array", "null"], "items": MEMBER}},
}

TEAM_UPDATE = {
    "type": "object", "required": ["team_id"], "additionalProperties": False,
    "properties": {**dialect.ignored_schema("team_update"), **TEAM_FIELDS,
                   "team_id": IDENTIFIER},
}

TEAM_BLOCK = {
    "type": "object", "required": ["team_id"], "additionalProperties": False,
    "properties": {"team_id": IDENTIFIER},
}
TEAM_UNBLOCK = TEAM_BLOCK

TEAM_DELETE = {
    "type": "object", "required": ["team_ids"], "additionalProperties": False,
    "properties": {"team_ids": {"type": "array", "minItems": 1, "items": IDENTIFIER}},
}

TEAM_MEMBER_ADD = {
    "type": "object", "required": ["team_id", "member"], "additionalProperties": False,
    "properties": {"team_id": IDENTIFIER,
                   "member": {"oneOf": [MEMBER, {"type": "array", "items": MEMBER}]},
                   "max_budget_in_team": OPTIONAL_NUMBER},
}

TEAM_MEMBER_DELETE = {
    "type": "object", "required": ["team_id"], "additionalProperties": False,
    "properties": {"team_id": IDENTIFIER, "user_id": USER_ID, "user_email": EMAIL},
}

TEAM_MEMBER_UPDATE = {
    "type": "object", "required": ["team_id"], "additionalProperties": False,
    "properties": {**dialect.ignored_schema("team_member_update"),
                   "team_id": IDENTIFIER, "user_id": USER_ID, "user_email": EMAIL,
                   "role": MEMBER_ROLE, "max_budget_in_team": OPTIONAL_NUMBER},
}

KEY_FIELDS = {
    "key_alias": {"type": ["string", "null"], "maxLength": 256},
    "models": OPTIONAL_NAMES,
    "duration": {"type": ["string", "null"], "pattern": r"^\d+(mo|[smhdwy])$",
                 "description": "Use a number and a unit: 30s, 15m, 12h, 30d, 2w, 1mo or 1y."},
    "metadata": METADATA,
    "blocked": {"type": ["boolean", "null"]},
    "user_id": {"type": ["string", "null"], "maxLength": 256},
    **LIMITS,
}

KEY_GENERATE = {
    "type": "object", "additionalProperties": False,
    "properties": {**dialect.ignored_schema("key_generate"), **KEY_FIELDS,
                   "team_id": {"oneOf": [IDENTIFIER, {"type": "null"}]}},
}

KEY_UPDATE = {
    "type": "object", "required": ["key"], "additionalProperties": False,
    "properties": {**dialect.ignored_schema("key_update"), **KEY_FIELDS, "key": NAME,
                   "team_id": {"oneOf": [IDENTIFIER, {"type": "null"}]}},
}

KEY_REGENERATE = {
    "type": "object", "additionalProperties": False,
    "properties": {**dialect.ignored_schema("key_regenerate"), **KEY_FIELDS, "key": NAME,
                   "team_id": {"oneOf": [IDENTIFIER, {"type": "null"}]}},
}

KEY_BLOCK = {
    "type": "object", "required": ["key"], "additionalProperties": False,
    "properties": {"key": NAME},
}
KEY_UNBLOCK = KEY_BLOCK

USER_FIELDS = {
    "user_email": {"oneOf": [EMAIL, {"type": "null"}]},
    "user_alias": {"type": ["string", "null"], "maxLength": 256},
    "user_role": {"enum": ["proxy_admin", "proxy_admin_viewer", "internal_user",
                           "internal_user_viewer", None]},
    "password": {"type": ["string", "null"], "minLength": 8, "maxLength": 128,
                 "description": "Use 8 to 128 characters."},
    "models": OPTIONAL_NAMES, "metadata": METADATA,
    **{name: LIMITS[name] for name in ("max_budget", "budget_duration", "tpm_limit",
                                       "rpm_limit", "max_parallel_requests")},
}

USER_TEAM = {"oneOf": [IDENTIFIER, {
    "type": "object", "required": ["team_id"], "additionalProperties": False,
    "properties": {"team_id": IDENTIFIER, "max_budget_in_team": OPTIONAL_NUMBER,
                   "user_role": MEMBER_ROLE}}]}

USER_NEW = {
    "type": "object", "additionalProperties": False,
    "properties": {**dialect.ignored_schema("user_new"), **USER_FIELDS,
                   "user_id": {"oneOf": [USER_ID, {"type": "null"}]},
                   "teams": {"type": ["array", "null"], "items": USER_TEAM},
                   "auto_create_key": {"type": "boolean"},
                   "key_alias": KEY_FIELDS["key_alias"], "duration": KEY_FIELDS["duration"],
                   "team_id": {"oneOf": [IDENTIFIER, {"type": "null"}]}},
}

USER_UPDATE = {
    "type": "object", "additionalProperties": False,
    "properties": {**dialect.ignored_schema("user_update"), **USER_FIELDS,
                   "user_id": {"oneOf": [USER_ID, {"type": "null"}]}},
}

USER_DELETE = {
    "type": "object", "required": ["user_ids"], "additionalProperties": False,
    "properties": {"user_ids": {"type": "array", "minItems": 1, "items": USER_ID}},
}

KEY_DELETE = {
    "type": "object", "additionalProperties": False,
    "properties": {"keys": NAMES, "key_aliases": NAMES},
}

# query parameters of the GET routes: view name -> {name: (schema, required)}
QUERY_PARAMETERS = {
    "team_info": {"team_id": (IDENTIFIER, True)},
    "key_info": {"key": (NAME, False)},
    "model_info": {"litellm_model_id": ({"type": "string"}, False)},
    "user_info": {"user_id": (USER_ID, False)},
    "model_group_info": {"model_group": ({"type": "string"}, False)},
    "user_list": {"role": ({"type": "string"}, False), "user_ids": ({"type": "string"}, False),
                  "page": ({"type": "integer", "minimum": 1, "maximum": 1_000_000}, False),
                  "page_size": ({"type": "integer", "minimum": 1, "maximum": 100}, False)},
}
