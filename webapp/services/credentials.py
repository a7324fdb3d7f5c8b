"""Named provider keys of a team: pasted once, masked from then on, shared by deployments, and
bound to the origins (scheme://host:port) they may be sent to.

A named key is bound when it is pasted with an API base, or else by its first use (the first
model or test that sends it somewhere; audited as credential.bind). From then on it goes only
to its bound origins; only a team admin adds another one, explicitly and audited."""
from urllib.parse import urlsplit

from sqlalchemy import func, select

from webapp.crypto import decrypt, encrypt, mask
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential
from webapp.models.base import new_id
from webapp import providers
from webapp.services import audit
from webapp.upstream import egress
from webapp.services.cache import routing_changed

DEFAULT_PORTS = {"http": 80, "https": 443}


def serialize(row: ProviderCredential) -> dict:
    return {"id": row.id, "team_id": row.team_id, "name": row.name, "key": row.secret_masked,
            "bound_origins": list(row.bound_origins or []),
            "created_by": row.created_by, "updated_by": row.updated_by}


def origin(url: str) -> str | None:
    """scheme://host:port of a URL, the unit a stored key is bound to; None without a host."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def destination(params: dict) -> str | None:
    """The origin a deployment with these litellm_params sends its secrets to."""
    provider, _ = providers.for_params(params)
    if provider is None:
        return None
    base = provider.destination(providers.target_for(params, {}))
    return origin(base) if base else None


def is_bound(row: ProviderCredential, to: str | None) -> bool:
    return to is not None and to in (row.bound_origins or [])


def ensure_bound(principal, row: ProviderCredential, to: str | None):
    """Refuse to point this named key at an origin it is not bound to; its first use binds it."""
    if to is not None and not row.bound_origins:
        _bind(principal, row, to)
    elif not is_bound(row, to):
        raise APIError(400, f"The provider key {row.name} is not bound to {to or 'this model'}: "
                            "a stored key goes only to the host it was saved for. Paste the key "
                            "again as api_key, or ask a team admin to allow this host for it on "
                            "the Provider keys page.",
                       param="litellm_params.litellm_credential_name")


def bind(principal, row: ProviderCredential, api_base: str):
    """A team admin's explicit permission for this key to go to another origin (audited)."""
    if principal.team_role(row.team_id) != "admin":
        raise APIError(403, "Only an admin of this team may allow a provider key at another "
                            "host.", param="api_base")
    egress.check_api_base(api_base)
    to = origin(api_base)
    if not is_bound(row, to):
        _bind(principal, row, to)


def _bind(principal, row: ProviderCredential, to: str):
    before = serialize(row)
    row.bound_origins = [*(row.bound_origins or []), to]  # a new list: JSON columns see no edits
    row.updated_by = principal.actor
    audit.record(principal, "credential.bind", "credential", row.id, row.team_id,
                 before=before, after=serialize(row))
    routing_changed()


def for_team(team_id: str) -> list[ProviderCredential]:
    return list(db.session.scalars(select(ProviderCredential)
                                   .where(ProviderCredential.team_id == team_id)
                                   .order_by(ProviderCredential.name)))


def usage_counts(team_id: str) -> dict[str, int]:
    rows = db.session.execute(
        select(Deployment.credential_id, func.count()).where(Deployment.team_id == team_id)
        .group_by(Deployment.credential_id))
    return {credential_id: count for credential_id, count in rows if credential_id}


def get(team_id: str, credential_id: str) -> ProviderCredential:
    row = db.session.get(ProviderCredential, credential_id)
    if row is None or row.team_id != team_id:
        raise APIError(404, "Provider key not found.")
    return row


def by_name(team_id: str | None, name: str) -> ProviderCredential:
    row = db.session.scalar(select(ProviderCredential).where(
        ProviderCredential.team_id == team_id, ProviderCredential.name == name))
    if row is None:
        raise APIError(400, f"No provider key named {name} in this team.",
                       param="litellm_params.litellm_credential_name")
    return row


def create(principal, team_id: str, name: str, secret: str,
           api_base: str | None = None) -> ProviderCredential:
    """A named key, bound from the start to api_base's origin when one is given."""
    name = name.strip()
    if not name or not secret.strip():
        raise APIError(400, "A provider key needs a name and a value.", param="name")
    exists = db.session.scalar(select(ProviderCredential).where(
        ProviderCredential.team_id == team_id, ProviderCredential.name == name))
    if exists is not None:
        raise APIError(400, f"This team already has a provider key named {name}.", param="name")
    bound = []
    if api_base and api_base.strip():
        egress.check_api_base(api_base.strip())
        bound = [origin(api_base.strip())]
    row = ProviderCredential(id=new_id(), team_id=team_id, name=name, bound_origins=bound,
                             created_by=principal.actor, updated_by=principal.actor)
    _store_secret(row, secret.strip())
    db.session.add(row)
    audit.record(principal, "credential.create", "credential", row.id, team_id,
                 after=serialize(row))
    return row


def replace(principal, row: ProviderCredential, secret: str):
    if not secret.strip():
        raise APIError(400, "Paste the new key value.", param="secret")
    before = serialize(row)
    _store_secret(row, secret.strip())
    row.updated_by = principal.actor
    audit.record(principal, "credential.replace", "credential", row.id, row.team_id,
                 before=before, after=serialize(row))
    routing_changed()


def delete(principal, row: ProviderCredential):
    if usage_counts(row.team_id).get(row.id):
        raise APIError(400, "This provider key is used by models; change them first.")
    audit.record(principal, "credential.delete", "credential", row.id, row.team_id,
                 before=serialize(row))
    db.session.delete(row)


def secret_of(row: ProviderCredential) -> str:
    return decrypt(row.secret_encrypted, row.id)


def _store_secret(row: ProviderCredential, secret: str):
    row.secret_encrypted = encrypt(secret, row.id)
    row.secret_masked = mask(secret)
