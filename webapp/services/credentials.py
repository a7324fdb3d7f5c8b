"""Named provider keys of a team: pasted once, masked from then on, shared by deployments."""
from sqlalchemy import func, select

from webapp.crypto import decrypt, encrypt, mask
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential
from webapp.models.base import new_id
from webapp.services import audit
from webapp.services.cache import routing_changed


def serialize(row: ProviderCredential) -> dict:
    return {"id": row.id, "team_id": row.team_id, "name": row.name, "key": row.secret_masked,
            "created_by": row.created_by, "updated_by": row.updated_by}


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


def create(principal, team_id: str, name: str, secret: str) -> ProviderCredential:
    name = name.strip()
    if not name or not secret.strip():
        raise APIError(400, "A provider key needs a name and a value.", param="name")
    exists = db.session.scalar(select(ProviderCredential).where(
        ProviderCredential.team_id == team_id, ProviderCredential.name == name))
    if exists is not None:
        raise APIError(400, f"This team already has a provider key named {name}.", param="name")
    row = ProviderCredential(id=new_id(), team_id=team_id, name=name,
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
