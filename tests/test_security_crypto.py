"""Provider keys at rest: AES-GCM bound to the row, a key rotation that re-encrypts everything in
one transaction, and the one masking function, property-tested."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import bearer
from webapp.auth.principal import MASTER
from webapp.crypto import DecryptionError, decrypt, encrypt, mask, new_encryption_key
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential
from webapp.services import credentials

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def test_ciphertext_is_bound_to_its_row(app):
    with app.app_context():
        sealed = encrypt("sk-provider-team-a-secret-1234", "row-1")
        assert "secret" not in sealed and sealed.startswith("v1.")
        assert decrypt(sealed, "row-1") == "sk-provider-team-a-secret-1234"
        with pytest.raises(DecryptionError):
            decrypt(sealed, "row-2")
        with pytest.raises(DecryptionError):
            decrypt(sealed, "row-1", key=new_encryption_key())
        assert encrypt("same", "row-1") != encrypt("same", "row-1")  # fresh nonce each time


def test_a_ciphertext_copied_to_another_deployment_does_not_decrypt(app, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    first = seed.model(key, team_id, upstream.url, name="first")
    second = seed.model(key, team_id, upstream.url, name="second",
                        api_key="sk-provider-team-a-other-9999")
    with app.app_context():
        source = db.session.get(Deployment, first["model_id"])
        db.session.get(Deployment, second["model_id"]).secrets = dict(source.secrets)
        db.session.commit()
    response = client.post("/v1/chat/completions", headers=bearer(key),
                           json={"model": "second", **CHAT})
    assert response.status_code >= 500 and response.is_json
    assert all(r.headers.get("api-key") != "sk-provider-team-a-secret-1234"
               for r in upstream.received)


def _secrets_under(app, key):
    with app.app_context():
        rows = [(sealed, r.id) for r in db.session.scalars(db.select(Deployment))
                for sealed in (r.secrets or {}).values()]
        rows += [(r.secret_encrypted, r.id)
                 for r in db.session.scalars(db.select(ProviderCredential))]
        result = []
        for sealed, row_id in rows:
            try:
                result.append(decrypt(sealed, row_id, key))
            except DecryptionError:
                result.append(None)
        return result


def test_rotation_reencrypts_every_row_and_calls_still_work(app, make_app, seed, upstream,
                                                            tmp_path):
    client = app.test_client()
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, name="direct")
    with app.app_context():
        credentials.create(MASTER, team_id, "shared", "sk-provider-credential-secret-5678")
        db.session.commit()
    client.post("/model/new", headers=bearer(key), json={
        "model_name": "via-credential", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url,
                           "litellm_credential_name": "shared"}})
    old = app.config["TEAMGATE_ENCRYPTION_KEY"]
    assert sorted(_secrets_under(app, old)) == ["sk-provider-credential-secret-5678",
                                                "sk-provider-team-a-secret-1234"]
    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 secrets" in result.output
    new = (tmp_path / "encryption.key").read_text().strip()
    assert new != old and new not in result.output
    assert (tmp_path / "encryption.key").stat().st_mode & 0o077 == 0
    assert _secrets_under(app, old) == [None, None]
    assert sorted(_secrets_under(app, new)) == ["sk-provider-credential-secret-5678",
                                                "sk-provider-team-a-secret-1234"]
    # a restarted Teamgate with the new key serves both models with the right keys
    restarted = make_app(TEAMGATE_ENCRYPTION_KEY=new).test_client()
    for model, secret in (("direct", "sk-provider-team-a-secret-1234"),
                          ("via-credential", "sk-provider-credential-secret-5678")):
        response = restarted.post("/v1/chat/completions", headers=bearer(key),
                                  json={"model": model, **CHAT})
        assert response.status_code == 200, response.json
        sent = upstream.received[-1].headers
        assert sent.get("api-key") == secret or sent.get("Authorization") == f"Bearer {secret}"


def test_rotation_is_all_or_nothing(app, seed, upstream, tmp_path):
    team_id = seed.team()
    key = seed.key(team_id)
    good = seed.model(key, team_id, upstream.url, name="good")
    bad = seed.model(key, team_id, upstream.url, name="bad", api_key="sk-provider-team-a-bad-0000")
    old = app.config["TEAMGATE_ENCRYPTION_KEY"]
    with app.app_context():
        row = db.session.get(Deployment, bad["model_id"])
        row.secrets = {"api_key": encrypt("sk-provider-team-a-bad-0000", row.id,
                                          new_encryption_key())}
        db.session.commit()
    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
    assert result.exit_code != 0
    assert not (tmp_path / "encryption.key").exists()
    assert app.config["TEAMGATE_ENCRYPTION_KEY"] == old
    with app.app_context():
        row = db.session.get(Deployment, good["model_id"])
        assert decrypt(row.secrets["api_key"], row.id, old) == "sk-provider-team-a-secret-1234"
        db.session.delete(db.session.get(Deployment, bad["model_id"]))
        db.session.commit()


@given(st.text(min_size=12))
def test_mask_shows_at_most_the_last_four_characters(secret):
    masked = mask(secret)
    assert masked == "sk-..." + secret[-4:]
    # it depends on nothing but those four: any other secret with the same tail masks the same
    assert mask("x" * 20 + secret[-4:]) == masked


@given(st.text(max_size=11))
def test_mask_hides_short_secrets_entirely(secret):
    assert mask(secret) == "******"


def test_mask_of_nothing_is_nothing():
    assert mask(None) is None
