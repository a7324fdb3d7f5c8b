"""Operator commands: first-run setup, users, rotating the encryption key, prices, and
importing a LiteLLM config.yaml's model_list."""
import hashlib
import json
import os
from pathlib import Path

import click
import yaml
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, select

from webapp import config
from webapp.crypto import decrypt, encrypt, new_encryption_key, new_secret, new_virtual_key
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential, User
from webapp.services import deployments, schemas, teams, users
from webapp.services.validation import validate
from webapp.auth.principal import OPERATOR

GENERATORS = {"TEAMGATE_MASTER_KEY": new_virtual_key,
              "TEAMGATE_ENCRYPTION_KEY": new_encryption_key, "SECRET_KEY": new_secret}


def _write_secret(path: Path, value: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)


@click.command("setup")
@with_appcontext
def setup_command():
    """Create missing instance secrets, migrate the database, and create the first admin."""
    instance = Path(current_app.instance_path)
    for key, filename in config.INSTANCE_FILES.items():
        if current_app.config.get(key):
            continue
        value = GENERATORS[key]()
        _write_secret(instance / filename, value)
        current_app.config[key] = value
        if key == "TEAMGATE_MASTER_KEY":
            click.echo(f"Master key (shown once, kept in {instance / filename}): {value}")
        else:
            click.echo(f"Created {instance / filename} (mode 0600).")
    upgrade()
    if not db.session.scalar(select(func.count()).select_from(User)):
        admin = users.create(OPERATOR, "admin@teamgate.local", password=None, is_admin=True)
        password = users.one_time_password(admin)
        db.session.commit()
        click.echo(f"Dashboard admin (first run only): admin@teamgate.local / {password}")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--password", required=True, help="The user's password.")
@click.option("--admin", is_flag=True, help="Make the user a Teamgate admin (sees all teams).")
@click.option("--team", "team_id", help="Add the user to this team.")
@click.option("--role", type=click.Choice(["admin", "member"]), default="member",
              help="The user's role in --team.")
def create_user_command(email, password, admin, team_id, role):
    """Create a dashboard user."""
    try:
        user = users.create(OPERATOR, email, password, is_admin=admin)
        if team_id:
            teams.add_members(OPERATOR, team_id, [
                {"user_id": user.id, "role": teams.ROLE_TO_LITELLM[role]}])
    except APIError as error:
        raise click.ClickException(error.message) from None
    db.session.commit()
    click.echo(f"Created user {user.email}" + (f" ({role} of team {team_id})" if team_id else ""))


@click.command("rotate-encryption-key")
@with_appcontext
def rotate_encryption_key_command():
    """Re-encrypt every stored provider key under a new encryption key, in one transaction."""
    old, new = current_app.config["TEAMGATE_ENCRYPTION_KEY"], new_encryption_key()
    count = 0
    for row in db.session.scalars(select(Deployment)):
        if row.secrets:
            row.secrets = {name: encrypt(decrypt(sealed, row.id, old), row.id, new)
                           for name, sealed in row.secrets.items()}
            count += len(row.secrets)
    for row in db.session.scalars(select(ProviderCredential)):
        row.secret_encrypted = encrypt(decrypt(row.secret_encrypted, row.id, old), row.id, new)
        count += 1
    path = Path(current_app.instance_path) / config.INSTANCE_FILES["TEAMGATE_ENCRYPTION_KEY"]
    staged = path.with_suffix(".new")
    _write_secret(staged, new)
    db.session.commit()
    current_app.config["TEAMGATE_ENCRYPTION_KEY"] = new
    if os.environ.get("TEAMGATE_ENCRYPTION_KEY"):
        staged.unlink()
        click.echo(f"Re-encrypted {count} secrets. Set TEAMGATE_ENCRYPTION_KEY to the new key "
                   f"before restarting: {new}")
    else:
        staged.replace(path)
        click.echo(f"Re-encrypted {count} secrets; the new key is in {path}. Restart Teamgate.")


DEFAULT_PRICES_URL = ("https://raw.githubusercontent.com/BerriAI/litellm/main/"
                      "model_prices_and_context_window.json")


@click.command("refresh-prices")
@click.argument("url", default=DEFAULT_PRICES_URL)
def refresh_prices_command(url):
    """Replace the vendored price map with LiteLLM's current one (a URL or a local file)."""
    import json
    import urllib.request
    from datetime import date

    from webapp.services import prices
    if "://" in url:
        if not url.startswith(("https://", "http://")):
            raise click.BadParameter("give an http(s) URL or a file path", param_hint="URL")
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310  (operator's URL)
            text = answer.read()
    else:
        text = Path(url).read_bytes()
    try:
        models = prices.slim(json.loads(text))
    except (ValueError, AttributeError):
        raise click.ClickException(f"{url} is not LiteLLM's price map (a JSON object)") from None
    if not models:
        raise click.ClickException(f"{url} prices no model; the map was left as it was")
    prices.MAP_PATH.write_text(prices.dump(models, f"{url}; MIT, see LICENSE-model-prices",
                                           date.today().isoformat()))
    prices.reload_map()
    click.echo(f"Wrote {len(models)} model prices to {prices.MAP_PATH}.")


ENV_PREFIX = "os.environ/"
# sections of LiteLLM's config.yaml that set up LiteLLM itself: what Teamgate does instead
NOT_IMPORTED = {
    "general_settings": "Teamgate's settings are its environment (see the README's "
                        "Configuration); master_key is TEAMGATE_MASTER_KEY.",
    "litellm_settings": "callbacks, caching and fallbacks are LiteLLM's; Teamgate has none.",
    "router_settings": "Teamgate balances a name's deployments in turn; routing strategies "
                       "are LiteLLM's.",
    "environment_variables": "set them in Teamgate's environment instead.",
}


def _resolved(value, where: str):
    """os.environ/NAME references replaced by the variable's value, read now (stored
    encrypted when it is a secret); a missing variable is refused by name."""
    if isinstance(value, dict):
        return {k: _resolved(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in os.environ:
            raise APIError(400, f"{where} is {value}, but {name} is not set in the environment "
                                "of this command.", param=where)
        return os.environ[name]
    return value


def _entry_id(entry: dict) -> str:
    """The model's id: model_info.id, else one derived from the entry as written (references
    unresolved), so that importing the same file again finds the same models."""
    given = (entry.get("model_info") or {}).get("id")
    if given:
        return str(given)
    written = json.dumps([entry.get("model_name"), entry.get("litellm_params"),
                          (entry.get("model_info") or {}).get("team_id")], sort_keys=True)
    return "litellm-" + hashlib.sha256(written.encode()).hexdigest()[:32]


def _same(row: Deployment, body: dict) -> bool:
    """Whether the stored model is this entry already, its secrets included."""
    params = body["litellm_params"]
    secrets = row.secrets or {}
    return (row.public_name == body["model_name"] and row.credential_id is None
            and row.params == {k: v for k, v in params.items() if k not in secrets}
            and set(secrets) <= set(params)
            and all(decrypt(sealed, row.id) == params[name] for name, sealed in secrets.items()))


def _import_entry(index: int, entry) -> str:
    where = f"model_list[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
        raise APIError(400, f"{where} needs model_name and litellm_params.")
    model_id = _entry_id(entry)
    info = {k: v for k, v in (entry.get("model_info") or {}).items() if k != "id"}
    body = {"model_name": entry.get("model_name"),
            "litellm_params": _resolved(entry["litellm_params"], f"{where}.litellm_params"),
            "model_info": {**info, "id": model_id}}
    try:
        validate(body, schemas.MODEL_NEW)
    except APIError as error:
        raise APIError(400, f"{where}: {error.message}") from None
    team = info.get("team_id")
    label = f"{body['model_name']}" + (f" of team {team}" if team else " (global)")
    existing = db.session.get(Deployment, model_id)
    if existing is None:
        deployments.register(OPERATOR, body)
        return f"added {label}, id {model_id}"
    if existing.team_id != team:
        raise APIError(400, f"{where}: model id {model_id} belongs to another team.")
    if _same(existing, body):
        return f"unchanged {label}, id {model_id}"
    deployments.update(OPERATOR, {**body, "model_info": {"id": model_id, **info}})
    return f"updated {label}, id {model_id}"


@click.command("import-litellm-config")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_litellm_config_command(path):
    """Register a LiteLLM config.yaml's model_list (global models, and team models where
    model_info.team_id is set). Run it again after changing the file: nothing is duplicated.
    All or nothing: one entry Teamgate cannot represent and no model is written."""
    try:
        config_ = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        raise click.ClickException(f"{path} is not YAML: {error}") from None
    if not isinstance(config_, dict) or not isinstance(config_.get("model_list", []), list):
        raise click.ClickException(f"{path} has no model_list (a list of models).")
    done, refused = [], []
    for index, entry in enumerate(config_.get("model_list") or []):
        try:
            done.append(_import_entry(index, entry))
        except APIError as error:
            refused.append(error.message)
    for section in sorted(set(config_) & set(NOT_IMPORTED)):
        click.echo(f"not imported: {section}: {NOT_IMPORTED[section]}")
    if refused:
        db.session.rollback()
        raise click.ClickException("nothing was imported; Teamgate cannot represent:\n  " +
                                   "\n  ".join(refused))
    db.session.commit()
    for line in done:
        click.echo(line)
    click.echo(f"{len(done)} models in {path}.")


def init_app(app):
    for command in (setup_command, create_user_command, rotate_encryption_key_command,
                    refresh_prices_command, import_litellm_config_command):
        app.cli.add_command(command)
