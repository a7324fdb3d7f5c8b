"""Providers declare themselves: the registry, the API's schema and the dashboard's form follow
their declarations, with nothing else to edit when one is added (Mistral is the example)."""
from tests.conftest import bearer
from webapp import providers
from webapp.services import schemas


def test_every_declared_field_is_accepted_by_model_new_and_secrets_are_write_only(app):
    properties = schemas.LITELLM_PARAMS["properties"]
    for provider in providers.registered():
        for declared in provider.fields:
            assert declared.name in properties, (provider.name, declared.name)
        assert "api_key" in provider.secret_fields


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
