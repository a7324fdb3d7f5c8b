"""A script written for LiteLLM's management API, with request bodies from LiteLLM's docs, runs
unchanged against Teamgate: teams, users, members, keys and models, then a call with the
official openai client, then the clean-up."""
import openai
import requests

from tests.conftest import MASTER_KEY


def test_a_litellm_script_runs_unchanged(live, upstream):
    base = live.url
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}

    def post(path, body, headers=admin):
        response = requests.post(base + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def get(path, headers=admin):
        response = requests.get(base + path, headers=headers, timeout=10)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    team = post("/team/new", {"team_alias": "my-new-team_4", "members_with_roles": [
        {"role": "admin", "user_id": "user-1234"}], "metadata": {"extra_info": "x"},
        "max_budget": 100, "tags": ["prod"]})
    team_id = team["team_id"]
    user = post("/user/new", {"user_email": "krrish@berri.ai", "user_role": "internal_user",
                              "teams": [team_id]})
    post("/team/member_add", {"team_id": team_id, "member": {
        "role": "user", "user_id": "krrish247652@berri.ai"}, "max_budget_in_team": 10})
    key = post("/key/generate", {"models": ["my-team-model"], "duration": "20m",
                                 "metadata": {"user": "ishaan@berri.ai"}, "team_id": team_id,
                                 "aliases": {}, "config": {}, "spend": 0,
                                 "allowed_cache_controls": [], "permissions": {}})
    # the team model page's request, made with the team's key
    post("/model/new", {"model_name": "my-team-model", "litellm_params": {
        "model": "openai/gpt-4o", "custom_llm_provider": "openai",
        "api_key": "sk-provider-team-script-0001", "api_base": upstream.url,
        "api_version": "2023-12-01-preview"}, "model_info": {"team_id": team_id}},
         headers={"Authorization": f"Bearer {key['key']}"})
    api = openai.OpenAI(base_url=base, api_key=key["key"], max_retries=0)
    answer = api.chat.completions.create(model="my-team-model",
                                         messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content

    info = get(f"/team/info?team_id={team_id}")
    assert "my-team-model" in info["team_info"]["models"]
    assert info["team_info"]["litellm_model_table"]["model_aliases"]["my-team-model"]
    assert get(f"/user/info?user_id={user['user_id']}")["user_info"]["teams"] == [team_id]
    assert get("/key/info?key=" + key["token"])["info"]["team_id"] == team_id
    post("/team/update", {"team_id": team_id, "max_budget": 200, "model_aliases": {
        "gpt-4o": "my-team-model"}})
    post("/key/update", {"key": key["key"], "metadata": {"team": "core-infra"}})
    new = post("/key/regenerate", {"key": key["key"]})
    assert get("/model_group/info", headers={"Authorization": f"Bearer {new['key']}"})["data"]
    assert get("/user/list")["total"] >= 3
    post("/key/delete", {"keys": [new["key"]]})
    post("/team/member_delete", {"team_id": team_id, "user_id": "krrish247652@berri.ai"})
    post("/user/delete", {"user_ids": [user["user_id"]]})
    post("/team/delete", {"team_ids": [team_id]})
