"""flask import-litellm-config: a LiteLLM config.yaml's model_list becomes Teamgate's models,
os.environ/ references read at import, idempotently; what Teamgate cannot represent is refused
and nothing is written."""
import textwrap

from tests.conftest import ADMIN, bearer

CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {base}
      api_key: os.environ/TEAMGATE_TEST_IMPORT_KEY
  - model_name: sweden-model
    litellm_params:
      model: azure/gpt-4o-sweden
      api_base: {base}
      api_key: os.environ/TEAMGATE_TEST_IMPORT_KEY
      api_version: "2024-02-01"
    model_info:
      team_id: {team}
general_settings:
  master_key: sk-1234
"""


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_import_registers_global_and_team_models_once(app, client, runner, seed, upstream,
                                                      tmp_path, monkeypatch):
    team_id = seed.team()
    monkeypatch.setenv("TEAMGATE_TEST_IMPORT_KEY", "sk-imported-provider-key-4242")
    path = write(tmp_path, CONFIG.format(base=upstream.url, team=team_id))
    first = runner.invoke(args=["import-litellm-config", path])
    assert first.exit_code == 0, first.output
    assert "added gpt-4o (global)" in first.output
    assert f"added sweden-model of team {team_id}" in first.output
    assert "not imported: general_settings" in first.output
    assert "sk-imported-provider-key-4242" not in first.output
    again = runner.invoke(args=["import-litellm-config", path])
    assert again.exit_code == 0 and again.output.count("unchanged") == 2, again.output
    models = client.get("/model/info", headers=ADMIN).json["data"]
    assert sorted(m["model_name"] for m in models) == ["gpt-4o", "sweden-model"]
    key = seed.key(team_id)
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "sweden-model", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.json
    assert upstream.received[-1].headers["api-key"] == "sk-imported-provider-key-4242"
    assert upstream.received[-1].path.startswith("/openai/deployments/gpt-4o-sweden/")
    monkeypatch.setenv("TEAMGATE_TEST_IMPORT_KEY", "sk-rotated-provider-key-9999")
    rotated = runner.invoke(args=["import-litellm-config", path])
    assert rotated.output.count("updated") == 2, rotated.output


def test_import_refuses_what_it_cannot_represent_and_writes_nothing(client, runner, seed,
                                                                    upstream, tmp_path,
                                                                    monkeypatch):
    monkeypatch.delenv("TEAMGATE_TEST_IMPORT_KEY", raising=False)
    path = write(tmp_path, CONFIG.format(base=upstream.url, team="no-such-team"))
    result = runner.invoke(args=["import-litellm-config", path])
    assert result.exit_code != 0
    assert "TEAMGATE_TEST_IMPORT_KEY is not set" in result.output
    assert "nothing was imported" in result.output
    monkeypatch.setenv("TEAMGATE_TEST_IMPORT_KEY", "sk-imported-provider-key-4242")
    result = runner.invoke(args=["import-litellm-config", path])  # the global one is fine
    assert result.exit_code != 0 and "Team id=no-such-team does not exist" in result.output
    assert client.get("/model/info", headers=ADMIN).json["data"] == []
    bad = write(tmp_path, f"""
model_list:
  - model_name: weighted
    litellm_params: {{model: openai/gpt-4o, api_base: "{upstream.url}", weight: 3}}
""")
    refused = runner.invoke(args=["import-litellm-config", bad])
    assert refused.exit_code != 0 and "model_list[0]" in refused.output
    assert "weight" in refused.output
