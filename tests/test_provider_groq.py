"""Groq, added as CONTRIBUTING.md describes (one module, one registration): an OpenAI-compatible
provider whose default api_base is Groq's, registered, described and called like any other."""
import openai
import pytest

from tests.conftest import bearer
from webapp import providers
from webapp.dashboard.model_forms import upstream_url

GROQ_KEY = "sk-provider-groq-gsk-team-key-9012"


def test_groq_goes_to_its_own_host_by_default():
    assert upstream_url({"model": "groq/llama-3.3-70b-versatile"}) == \
        "https://api.groq.com/openai/v1/chat/completions"
    assert providers.get("groq").secret_fields == ("api_key",)


def test_a_groq_model_is_called_with_the_teams_key_and_serves_chat_only(client, seed, live,
                                                                        upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    created = client.post("/model/new", headers=bearer(key), json={
        "model_name": "team-llama", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "groq/llama-3.3-70b-versatile", "api_base": upstream.url,
                           "api_key": GROQ_KEY}})
    assert created.status_code == 200, created.json
    assert created.json["litellm_params"]["api_key"] == "sk-...9012"
    api = openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)
    answer = api.chat.completions.create(model="team-llama",
                                         messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    received = upstream.received[-1]
    assert received.path == "/chat/completions"
    assert received.headers["Authorization"] == f"Bearer {GROQ_KEY}"
    assert received.body["model"] == "llama-3.3-70b-versatile"
    with pytest.raises(openai.BadRequestError, match="does not serve"):
        api.embeddings.create(model="team-llama", input="hi")
    assert len(upstream.received) == 1
