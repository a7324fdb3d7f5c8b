"""Registering, changing and removing deployments, team models and their aliases included."""
import uuid

from sqlalchemy import func, select

from webapp.crypto import encrypt, mask
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential, Team, TeamModelAlias
from webapp.models.base import isoformat, new_id
from webapp import providers
from webapp.services import audit, credentials, resolver
from webapp.upstream import egress
from webapp.services.cache import routing_changed

# model_info keys Teamgate sets itself, or that would claim a permission (LiteLLM's access
# fields): refused by name rather than stored or dropped
RESERVED_INFO = ("is_admin", "created_by", "updated_by", "created_at", "updated_at", "db_model",
                 "team_public_model_name", "internal_model_name", "model_id", "access_groups",
                 "access_via_team_ids", "direct_access")


def internal_name(team_id: str) -> str:
    return f"model_name_{team_id}_{uuid.uuid4()}"


def serialize(row: Deployment, public: bool = False) -> dict:
    params = {**row.params, **(row.secrets_masked or {})}
    if row.credential_id:
        credential = db.session.get(ProviderCredential, row.credential_id)
        params["litellm_credential_name"] = credential.name
        params["api_key"] = credential.secret_masked
    # reserved keys an older release stored are not shown as if they meant something
    info = {**{k: v for k, v in row.model_info.items() if k not in RESERVED_INFO},
            "id": row.id, "team_id": row.team_id}
    if row.team_id:
        info["team_public_model_name"] = row.public_name
        info["internal_model_name"] = row.model_name
    return {
        "model_id": row.id,
        "model_name": row.public_name if public else row.model_name,
        "litellm_params": params, "model_info": info,
        "created_at": isoformat(row.created_at), "created_by": row.created_by,
        "updated_at": isoformat(row.updated_at), "updated_by": row.updated_by,
    }


def authorize_team_write(principal, team_id: str | None):
    """May this caller add or change models of this team (None: the global models)?"""
    if principal.is_admin:
        return
    if team_id is None:
        raise APIError(403, "Only the proxy admin may add global models. To add a model for "
                            "your team, set model_info.team_id.", param="model_info.team_id")
    if principal.team_role(team_id) is None:
        if principal.kind == "team_key":
            raise APIError(403, f"Team ID={team_id} does not match the API key's team "
                                f"ID={principal.team_id}.", param="model_info.team_id")
        raise APIError(403, "You may add models only to your own team.",
                       param="model_info.team_id")


def _check_info(info: dict, team_id: str | None):
    """Refuse reserved model_info keys, and a team_id other than the model's own."""
    reserved = sorted(k for k in info if k in RESERVED_INFO)
    if reserved:
        raise APIError(400, f"model_info.{reserved[0]} is set by Teamgate and cannot be sent"
                            f" (reserved: {', '.join(f'model_info.{k}' for k in reserved)}).",
                       param=f"model_info.{reserved[0]}")
    if "team_id" in info and info["team_id"] != team_id:
        raise APIError(400, "model_info.team_id cannot change: a model stays in the team it was "
                            "registered in.", param="model_info.team_id")


def _check_params(params: dict, team_id: str | None) -> tuple[str, str]:
    provider, model = providers.for_params(params)
    if provider is None or not model:
        name = params.get("custom_llm_provider") or params["model"].partition("/")[0]
        raise APIError(400, f"Unknown provider '{name}'. Set litellm_params.model to "
                            f"'<provider>/<model>' with one of: {', '.join(providers.names())}.",
                       param="litellm_params.custom_llm_provider")
    for declared in provider.fields:
        # a required secret may be stored already, or come from a named provider key
        if declared.required and not declared.secret and not params.get(declared.name):
            raise APIError(400, f"Provider {provider.name} needs litellm_params."
                                f"{declared.name}.", param=f"litellm_params.{declared.name}")
        if declared.kind == "url" and params.get(declared.name):
            egress.check_api_base(params[declared.name])
    if params.get("api_base"):
        egress.check_api_base(params["api_base"])
    return provider.name, model


def _apply_secrets(principal, row: Deployment, params: dict):
    """Move every secret out of params (encrypted on the row, or a named credential's id), then
    make sure the secrets the row keeps are bound to where these params send them."""
    to = credentials.destination(params)
    sent = {name: params.pop(name) for name in list(params) if name in providers.secret_names()}
    stored, masked = dict(row.secrets or {}), dict(row.secrets_masked or {})
    if "litellm_credential_name" in params:
        row.credential_id = credentials.by_name(row.team_id, params.pop(
            "litellm_credential_name")).id
        stored.pop("api_key", None)
        masked.pop("api_key", None)
    kept = sorted(set(stored) - set(sent))
    if kept and row.secrets_origin != to:
        raise APIError(400, f"Changing where the model's calls go (api_base) requires sending "
                            f"{', '.join(kept)} again, so a stored secret is never sent to a new "
                            "host.", param=f"litellm_params.{kept[0]}")
    for name, secret in sent.items():
        stored[name], masked[name] = encrypt(secret, row.id), mask(secret)
    if "api_key" in sent:
        row.credential_id = None
    row.secrets, row.secrets_masked = stored, masked
    row.secrets_origin = to if stored else None
    if row.credential_id:
        credentials.ensure_bound(principal, db.session.get(ProviderCredential, row.credential_id),
                                 to)


def _join_alias(principal, team_id: str, public_name: str) -> str:
    alias = db.session.scalar(select(TeamModelAlias).where(
        TeamModelAlias.team_id == team_id, TeamModelAlias.public_name == public_name))
    if alias is None:
        alias = TeamModelAlias(team_id=team_id, public_name=public_name,
                               internal_name=internal_name(team_id),
                               created_by=principal.actor, updated_by=principal.actor)
        db.session.add(alias)
    else:
        alias.updated_by = principal.actor
    return alias.internal_name


def _leave_alias(team_id: str, internal: str, leaving: Deployment):
    remaining = db.session.scalar(select(func.count()).select_from(Deployment).where(
        Deployment.model_name == internal, Deployment.id != leaving.id))
    if not remaining:
        alias = db.session.scalar(select(TeamModelAlias).where(
            TeamModelAlias.team_id == team_id, TeamModelAlias.internal_name == internal))
        if alias is not None:
            db.session.delete(alias)


def register(principal, body: dict) -> Deployment:
    info = dict(body.get("model_info") or {})
    team_id = info.get("team_id")
    _check_info(info, team_id)
    # permission before existence: another team's id and a missing one get the same answer
    authorize_team_write(principal, team_id)
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise APIError(400, f"Team id={team_id} does not exist.", param="model_info.team_id")
    if "id" in info and not principal.is_admin:
        # "already exists" would confirm another team's model id
        raise APIError(400, "model_info.id is chosen by Teamgate; only the proxy admin may "
                            "choose a model's id.", param="model_info.id")
    params = dict(body["litellm_params"])
    provider, _ = _check_params(params, team_id)
    model_id = info.pop("id", None) or new_id()
    if db.session.get(Deployment, model_id) is not None:
        raise APIError(400, f"A model with id={model_id} already exists.", param="model_info.id")
    info.pop("team_id", None)
    public_name = body["model_name"]
    row = Deployment(id=model_id, team_id=team_id, public_name=public_name, provider=provider,
                     model_info=info, created_by=principal.actor, updated_by=principal.actor)
    _apply_secrets(principal, row, params)
    row.params = params
    row.model_name = _join_alias(principal, team_id, public_name) if team_id else public_name
    db.session.add(row)
    db.session.flush()
    audit.record(principal, "model.create", "model", row.id, team_id, after=serialize(row))
    routing_changed()
    return row


def find_writable(principal, model_id: str) -> Deployment:
    """A deployment this caller may change; another team's looks exactly like a missing one."""
    row = db.session.get(Deployment, model_id)
    if row is None or not (principal.is_admin or (
            row.team_id and principal.team_role(row.team_id) is not None)):
        raise APIError(404, f"Model id={model_id} not found.", param="id")
    return row


def update(principal, body: dict) -> Deployment:
    row = find_writable(principal, body["model_info"]["id"])
    _check_info(body["model_info"], row.team_id)
    before = serialize(row)
    changes = dict(body.get("litellm_params") or {})
    merged = {**row.params, **changes}
    row.provider, _ = _check_params(merged, row.team_id)
    _apply_secrets(principal, row, merged)
    row.params = merged
    extra = {k: v for k, v in (body["model_info"]).items() if k not in ("id", "team_id")}
    row.model_info = {**row.model_info, **extra}
    new_name = body.get("model_name")
    if new_name and new_name != row.public_name:
        if row.team_id:
            old_internal = row.model_name
            row.model_name = _join_alias(principal, row.team_id, new_name)
            _leave_alias(row.team_id, old_internal, row)
        else:
            row.model_name = new_name
        row.public_name = new_name
    row.updated_by = principal.actor
    db.session.flush()
    audit.record(principal, "model.update", "model", row.id, row.team_id,
                 before=before, after=serialize(row))
    routing_changed()
    return row


def delete(principal, model_id: str):
    row = find_writable(principal, model_id)
    audit.record(principal, "model.delete", "model", row.id, row.team_id, before=serialize(row))
    if row.team_id:
        _leave_alias(row.team_id, row.model_name, row)
    db.session.delete(row)
    routing_changed()


def visible(principal, model_id: str | None = None) -> list[Deployment]:
    """Deployments the caller may see: everything for the admin; else its teams' and globals."""
    query = select(Deployment).order_by(Deployment.created_at)
    if model_id:
        query = query.where(Deployment.id == model_id)
    rows = list(db.session.scalars(query))
    if principal.is_admin:
        return rows
    callable_globals = set(resolver.allowed_global_names(principal))
    return [r for r in rows if (r.team_id and principal.team_role(r.team_id) is not None)
            or (r.team_id is None and r.public_name in callable_globals)]


def for_team(team_id: str) -> list[Deployment]:
    return list(db.session.scalars(select(Deployment).where(Deployment.team_id == team_id)
                                   .order_by(Deployment.public_name, Deployment.created_at)))
