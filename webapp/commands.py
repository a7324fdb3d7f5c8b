"""Operator commands: first-run setup, users, and rotating the encryption key."""
import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, select

from webapp import config
from webapp.crypto import decrypt, encrypt, new_encryption_key, new_secret, new_virtual_key
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential, User
from webapp.services import teams, users
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


def init_app(app):
    for command in (setup_command, create_user_command, rotate_encryption_key_command,
                    refresh_prices_command):
        app.cli.add_command(command)
