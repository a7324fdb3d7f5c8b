"""Canary secrets: the scanner itself works, provider keys live only as ciphertext, and neither the
environment's OPENAI_API_KEY nor an upstream's echo of a team's key ever reaches anyone."""
import logging

import openai

from tests import canaries
from tests.conftest import ADMIN, AMBIENT_OPENAI_KEY, MASTER_KEY, bearer
from tests.fake_upstream import Reply
from webapp.extensions import db
from webapp.models import Deployment, ProviderCredential
from webapp.services import credentials

PROVIDER_KEY = "sk-provider-team-a-secret-1234"


def test_scanner_catches_a_secret_in_a_response_a_log_record_and_a_column(app, client, seed):
    team_id = seed.team()
    seed.model(seed.key(team_id), team_id, "http://127.0.0.1:9/v1")
    logging.getLogger("webapp.test").debug("oops %s", PROVIDER_KEY)
    canaries.WATCH.record_response("GET /fake", f"header: {MASTER_KEY}")
    with app.app_context():
        db.session.execute(db.update(Deployment).values(secrets_masked={"api_key": PROVIDER_KEY[:16]}))
        db.session.execute(db.update(Deployment).values(public_name=PROVIDER_KEY))
        db.session.commit()
    findings = canaries.findings_of_test()
    canaries.WATCH.reset()  # the leaks above were planted; the per-test scan must not see them
    with app.app_context():
        db.session.execute(db.delete(Deployment))
        db.session.commit()
    assert any(f.startswith("log record carries a secret ending 1234") for f in findings)
    assert any(f.startswith("response GET /fake carries") for f in findings)
    assert "deployments.public_name holds a secret ending 1234" in findings


def test_provider_keys_are_only_in_the_encrypted_columns_and_only_as_ciphertext(
        app, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    with app.app_context():
        from webapp.auth.principal import MASTER
        credentials.create(MASTER, team_id, "shared", "sk-provider-credential-secret-5678")
        db.session.commit()
        secrets = {PROVIDER_KEY, "sk-provider-credential-secret-5678"}
        deployment = db.session.scalar(db.select(Deployment))
        credential = db.session.scalar(db.select(ProviderCredential))
        assert deployment.secrets["api_key"].startswith("v1.")
        assert credential.secret_encrypted.startswith("v1.")
        assert deployment.secrets_masked == {"api_key": "sk-...1234"}
    assert canaries.database_findings(app, secrets) == []


def test_upstream_error_that_echoes_the_key_is_scrubbed(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, name="echo")
    upstream.reply(Reply(status=400, body={"error": {
        "message": f"Incorrect API key provided: {PROVIDER_KEY}."}}))
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "echo", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert PROVIDER_KEY not in response.get_data(as_text=True)
    assert "sk-...1234" in response.json["error"]["message"]


def test_model_info_and_key_list_show_only_masked_forms(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    for path in ("/model/info", "/key/list", f"/team/info?team_id={team_id}", "/team/list"):
        for headers in (ADMIN, bearer(key)):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, path
            body = response.get_data(as_text=True)
            assert PROVIDER_KEY not in body and key not in body
    info = client.get("/model/info", headers=bearer(key)).json["data"][0]
    assert info["litellm_params"]["api_key"] == "sk-...1234"


def test_ambient_openai_key_is_never_sent_upstream(client, live, seed, upstream):
    """A deployment without a key calls its upstream without one, whatever the environment has."""
    team_id = seed.team()
    key = seed.key(team_id)
    body = {"model_name": "keyless", "model_info": {"team_id": team_id},
            "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url}}
    assert client.post("/model/new", json=body, headers=bearer(key)).status_code == 200
    chat = openai.OpenAI(api_key=key, base_url=live.url + "/v1").chat.completions.create(
        model="keyless", messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content
    received = upstream.received[-1]
    assert "Authorization" not in received.headers and "api-key" not in received.headers
    assert AMBIENT_OPENAI_KEY not in str(received.headers)
    assert key not in str(received.headers)  # the caller's virtual key is not forwarded either
