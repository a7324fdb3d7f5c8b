"""The one place a model name becomes deployments: for a key, for the dashboard's resolver page,
and for /v1/models. Another team's names resolve exactly like names that do not exist."""
import dataclasses
import itertools
from dataclasses import dataclass

from sqlalchemy import select

from webapp.crypto import decrypt
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential, Team, TeamModelAlias
from webapp import providers
from webapp.providers import Target
from webapp.services import credentials, prices
from webapp.services.cache import routing_cache


@dataclass(frozen=True)
class Refusal:
    """A deployment whose stored key is not bound to where its row points: never called."""
    message: str


@dataclass(frozen=True)
class Resolution:
    """How a name resolved: the deployments (empty when it did not) and the reason in words."""
    name: str
    how: str  # "team_alias", "team_internal", "global", or why it failed
    deployments: tuple
    targets: tuple
    counter: itertools.count

    def pick(self) -> Target:
        target = self.targets[next(self.counter) % len(self.targets)]
        if isinstance(target, Refusal):
            raise APIError(403, target.message)
        return target


NOT_FOUND = "not_found"
KEY_RESTRICTED = "key_restricted"
TEAM_RESTRICTED = "team_restricted"


# a key's models that mean "every model its team may call", as LiteLLM reads them
ANY_MODEL = frozenset({"*", "all-proxy-models", "all-team-models"})


def allows(models, name: str) -> bool:
    """Whether a key's `models` let it call `name`: empty or ANY_MODEL means all, and an entry
    ending in `*` (LiteLLM's `openai/*`) every name it begins."""
    if not models or ANY_MODEL & set(models):
        return True
    return any(name == m or (m.endswith("*") and name.startswith(m[:-1])) for m in models)


def is_wildcard(name: str) -> bool:
    return name.endswith("*")


def _wildcards(name: str) -> list[tuple[str, str]]:
    """The wildcard deployment names that serve `name`, nearest first, with the model each
    sends upstream: `openai/*` for openai/gpt-4o (model gpt-4o), then `*` (model as asked)."""
    prefix, slash, rest = name.partition("/")
    return ([(f"{prefix}/*", rest)] if slash and rest else []) + [("*", name)]


def _with_model(target, model: str):
    """A wildcard deployment's target for one model: its `*` becomes the model asked for."""
    if isinstance(target, Refusal):
        return target
    upstream = target.upstream_model
    stored = target.params.get("model", "")
    return dataclasses.replace(
        target, upstream_model=upstream[:-1] + model if upstream.endswith("*") else model,
        params={**target.params, "model": stored[:-1] + model if stored.endswith("*")
                else model})


def _team(team_id: str | None) -> Team | None:
    return db.session.get(Team, team_id) if team_id else None


def _deployments(**where) -> list[Deployment]:
    query = select(Deployment).order_by(Deployment.created_at)
    for column, value in where.items():
        query = query.where(getattr(Deployment, column) == value)
    return list(db.session.scalars(query))


def _secrets_of(row: Deployment, to: str | None) -> dict:
    """The row's secrets in clear, if they are bound to `to`; else an APIError (not sent)."""
    secrets = {}
    if row.credential_id:
        credential = db.session.get(ProviderCredential, row.credential_id)
        if not credentials.is_bound(credential, to):
            raise _unbound(row, to)
        secrets["api_key"] = decrypt(credential.secret_encrypted, credential.id)
    if row.secrets:
        if to is None or to != row.secrets_origin:
            raise _unbound(row, to)
        secrets.update({name: decrypt(sealed, row.id) for name, sealed in row.secrets.items()})
    return secrets


def _unbound(row: Deployment, to: str | None) -> APIError:
    return APIError(403, f"The provider key of model {row.public_name} is not bound to "
                         f"{to or 'its destination'}, where the model points; Teamgate did not "
                         "send the call. Save the model again with its key, or ask a team admin "
                         "to allow the host on the Provider keys page.")


def target_of(row: Deployment) -> Target:
    """What forwarding needs to call this deployment; an APIError (403) when its stored
    secrets are not bound to the origin the row points at, however the row came to point
    there."""
    secrets = _secrets_of(row, credentials.destination(row.params))
    return providers.target_for(row.params, secrets, deployment_id=row.id,
                                public_name=row.public_name, team_id=row.team_id,
                                mode=(row.model_info or {}).get("mode"),
                                max_output_tokens=prices.output_limit(row.params, row.model_info))


def _target_or_refusal(row: Deployment) -> Target | Refusal:
    try:
        return target_of(row)
    except APIError as error:
        return Refusal(error.message)


def _lookup(team_id: str | None, key_models: tuple, name: str, is_admin: bool) -> Resolution:
    requested = name  # what the caller asked for, whatever it is an alias of

    def found(how, rows):
        return Resolution(requested, how, tuple(r.id for r in rows),
                          tuple(_target_or_refusal(r) for r in rows), itertools.count())

    def failed(how):
        return Resolution(requested, how, (), (), itertools.count())

    if not allows(key_models, name):
        return failed(KEY_RESTRICTED)
    team = _team(team_id)
    if team is not None:
        alias = db.session.scalar(select(TeamModelAlias).where(
            TeamModelAlias.team_id == team.id, TeamModelAlias.public_name == name))
        if alias is None and name in (team.model_aliases or {}):
            # LiteLLM's model_aliases: the team's own name for a model it can call; a team
            # model's public name is never shadowed by one (services/teams.py refuses it)
            name = team.model_aliases[name]
            alias = db.session.scalar(select(TeamModelAlias).where(
                TeamModelAlias.team_id == team.id, TeamModelAlias.public_name == name))
        if alias is not None:
            rows = _deployments(team_id=team.id, model_name=alias.internal_name)
            if rows:
                return found("team_alias", rows)
        rows = _deployments(team_id=team.id, model_name=name)
        if rows:
            return found("team_internal", rows)
    elif is_admin and name.startswith("model_name_"):
        rows = _deployments(model_name=name)
        if rows:
            return found("team_internal", rows)
    rows = _deployments(team_id=None, model_name=name)
    if rows and team is not None and team.models and name not in team.models:
        return failed(TEAM_RESTRICTED)
    if rows:
        return found("global", rows)
    if not is_wildcard(name):
        for pattern, model in _wildcards(name):
            wild = _lookup(team_id, (), pattern, is_admin)
            if wild.targets:
                return Resolution(requested, wild.how, wild.deployments,
                                  tuple(_with_model(t, model) for t in wild.targets),
                                  itertools.count())
    return failed(NOT_FOUND)


def resolve(principal, name: str) -> Resolution:
    key = ("route", principal.team_id, principal.key_models, principal.is_admin, name)
    return routing_cache().get(key, lambda: _lookup(
        principal.team_id, principal.key_models, name, principal.is_admin))


def allowed_global_names(principal) -> list[str]:
    names = db.session.scalars(select(Deployment.model_name).where(Deployment.team_id.is_(None))
                               .distinct())
    team = _team(principal.team_id)
    allowed = []
    for name in sorted(names):
        if is_wildcard(name):
            continue  # a pattern, not a name anyone can call as it is
        if team is not None and team.models and name not in team.models:
            continue
        if not allows(principal.key_models, name):
            continue
        allowed.append(name)
    return allowed


def callable_names(principal) -> list[str]:
    """Exactly the public names this caller can call (what /v1/models lists)."""
    def load():
        names = []
        if principal.team_id:
            names = list(db.session.scalars(
                select(TeamModelAlias.public_name).where(TeamModelAlias.team_id == principal.team_id)
                .order_by(TeamModelAlias.public_name)))
            names = [n for n in names if allows(principal.key_models, n) and not is_wildcard(n)]
        for name in allowed_global_names(principal):
            if name not in names:
                names.append(name)
        return tuple(names)

    return list(routing_cache().get(("names", principal.team_id, principal.key_models), load))
