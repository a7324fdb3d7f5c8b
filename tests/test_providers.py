"""Providers declare themselves: the registry, the API's schema and the dashboard's form follow
their declarations, with nothing else to edit when one is added (Mistral is the example)."""
from tests.conftest import bearer
from webapp.extensions import db
from webapp.models import Deployment
from webapp import providers
from webapp.services import schemas


def test_every_declared_field_is_accepted_by_model_new_and_secrets_are_write_only(app):
    properties = schemas.LITELLM_PARAMS["properties"]
    for provider in providers.registered():
        for declared in provider.fields:
            assert declared.name in properties, (provider.name, declared.name)
        assert provider.secret_fields, provider.name  # every provider authenticates somehow
        assert set(provider.secret_fields) <= providers.secret_names()


def test_a_mistral_model_calls_its_openai_compatible_api_with_the_teams_key(
        client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "team-mistral",
        "litellm_params": {"model": "mistral/mistral-large-latest", "api_base": upstream.url,
                           "api_key": "sk-mistral-team-key-5678"},
        "model_info": {"team_id": team_id}})
    assert response.status_code == 200, response.json
    assert response.json["litellm_params"]["api_key"] == "sk-...5678"

    answer = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "team-mistral", "messages": [{"role": "user", "content": "Bonjour"}]})
    assert answer.status_code == 200, answer.json
    received = upstream.received[-1]
    assert received.path == "/chat/completions"
    assert received.headers["Authorization"] == "Bearer sk-mistral-team-key-5678"
    assert received.body["model"] == "mistral-large-latest"


def test_every_secret_a_provider_declares_is_stored_encrypted_and_answered_masked(
        app, client, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "team-claude",
        "litellm_params": {"model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
                           "aws_access_key_id": "AKIAEXAMPLE1234",
                           "aws_secret_access_key": "sk-provider-aws-secret-abcd",
                           "aws_session_token": "sk-provider-aws-session-efgh",
                           "aws_region_name": "eu-west-1"},
        "model_info": {"team_id": team_id}})
    assert response.status_code == 200, response.json
    params = response.json["litellm_params"]
    assert params["aws_secret_access_key"] == "sk-...abcd"
    assert params["aws_session_token"] == "sk-...efgh"
    assert params["aws_access_key_id"] == "AKIAEXAMPLE1234"  # an identifier, not a secret
    with app.app_context():
        row = db.session.get(Deployment, response.json["model_id"])
        assert set(row.secrets) == {"aws_secret_access_key", "aws_session_token"}
        assert all(sealed.startswith("v1.") for sealed in row.secrets.values())
        assert "aws_secret_access_key" not in row.params
        assert row.secrets_origin == "https://bedrock-runtime.eu-west-1.amazonaws.com:443"


def test_moving_a_deployment_needs_every_stored_secret_again(client, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    created = client.post("/model/new", headers=bearer(key), json={
        "model_name": "team-claude",
        "litellm_params": {"model": "bedrock/amazon.titan-embed-text-v2:0",
                           "aws_access_key_id": "AKIAEXAMPLE1234",
                           "aws_secret_access_key": "sk-provider-aws-secret-abcd",
                           "aws_session_token": "sk-provider-aws-session-efgh",
                           "aws_region_name": "eu-west-1"},
        "model_info": {"team_id": team_id}}).json
    moved = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": created["model_id"]},
        "litellm_params": {"aws_region_name": "us-east-1",
                           "aws_secret_access_key": "sk-provider-aws-secret-wxyz"}})
    assert moved.status_code == 400
    assert moved.json["error"]["param"] == "litellm_params.aws_session_token"


def test_the_dashboard_offers_every_registered_provider_with_its_own_fields(app):
    from webapp.dashboard.model_forms import ModelForm

    with app.test_request_context():
        form = ModelForm(formdata=None, meta={"csrf": False})
        offered = [choice.value for choice in form.provider.choices]
        assert offered == [p.name for p in providers.registered()]
        form.provider.data = "mistral"
        assert form.provider_fields() == ("api_base",)
        assert form.secret_fields() == ("api_key",)
        form.provider.data = "azure"
        assert form.provider_fields() == ("api_base", "api_version")
