"""Deny by default: every route declares who may call it, the declaration is enforced, and team B's
keys can neither read nor change team A's teams, keys and models, nor see them in listings."""
import io
import json

import pytest
from flask import Flask

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply
from webapp.auth import access
from webapp.auth.dashboard_access import LEVELS as DASHBOARD_LEVELS
from webapp.openapi import JSON_BLUEPRINTS

DECLARED_LEVELS = set(access.LEVELS) | set(DASHBOARD_LEVELS)

# the one route allowed without a declaration: Flask's own static files
UNDECLARED_ALLOWED = {"static"}
RESPONSE_A = "resp_alpha_confidential_1"  # a Responses API answer team A was given
LISTINGS = ("/v1/models", "/models", "/model/info", "/v1/model/info", "/team/list", "/key/list",
            "/model_group/info")


def undeclared_routes(app: Flask) -> list[str]:
    return sorted(f"{rule.rule} ({rule.endpoint})" for rule in app.url_map.iter_rules()
                  if rule.endpoint not in UNDECLARED_ALLOWED
                  and getattr(app.view_functions[rule.endpoint], "access", None)
                  not in DECLARED_LEVELS)


def json_rules(app: Flask):
    """Routes of the JSON API and the proxy (the Bearer-key blueprints)."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint.partition(".")[0] in JSON_BLUEPRINTS:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule, view.access


def test_every_route_declares_who_may_call_it(app):
    assert undeclared_routes(app) == []
    assert len(list(json_rules(app))) >= 20


def test_a_route_without_a_declaration_fails_the_inventory(make_app):
    app = make_app()
    app.add_url_rule("/forgotten", "forgotten", lambda: "open to all")
    assert undeclared_routes(app) == ["/forgotten (forgotten)"]


def test_declarations_are_enforced_without_a_key_and_with_a_team_key(app, client, seed):
    team_key = seed.key(seed.team())
    for method, path, level in json_rules(app):
        if "<" in path:
            continue
        anonymous = client.open(path, method=method, json={})
        if level == access.PUBLIC:
            assert anonymous.status_code < 500, path
            continue
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.json["error"]["type"] == "authentication_error"
        if level == access.ADMIN:
            refused = client.open(path, method=method, json={}, headers=bearer(team_key))
            assert refused.status_code == 403, (method, path)


@pytest.fixture
def two_teams(client, seed, upstream, upstream_b):
    a = seed.team("Alpha Confidential Team")
    b = seed.team("Beta Team")
    member = client.post("/team/member_add", headers=ADMIN, json={
        "team_id": a, "member": {"user_email": "alpha-admin@example.com", "role": "admin"}})
    user_a = member.json["members_with_roles"][0]["user_id"]
    key_a = seed.key(a, key_alias="alpha-key-alias")
    key_b = seed.key(b, key_alias="beta-key-alias")
    personal_b = seed.key(None, user_id="beta-user")
    model_a = seed.model(key_a, a, upstream.url, name="alpha-model")
    seed.model(key_b, b, upstream_b.url, name="beta-model",
               api_key="sk-provider-team-b-secret-5678")
    upstream.reply(Reply(body={"id": RESPONSE_A, "object": "response", "output": []}))
    made = client.post("/v1/responses", headers=bearer(key_a),
                       json={"model": "alpha-model", "input": "hi"})
    assert made.status_code == 200, made.json
    own_info = client.get("/key/info", headers=bearer(key_a)).json
    token_a = own_info["key"]
    secrets_of_a = {
        "team id": a, "team alias": "Alpha Confidential Team", "model id": model_a["model_id"],
        "internal model name": model_a["model_name"], "public model name": "alpha-model",
        "key token": token_a, "key secret": key_a, "key name": own_info["info"]["key_name"],
        "key alias": "alpha-key-alias", "member": "alpha-admin@example.com",
        "api_base": upstream.url, "provider key (masked)": "sk-...1234",
        "provider key": "sk-provider-team-a-secret-1234",
    }
    return {"a": a, "b": b, "key_a": key_a, "token_a": token_a, "model_a": model_a,
            "user_a": user_a,
            "callers": {"team B key": key_b, "personal key": personal_b},
            "secrets": secrets_of_a}


def attacks(t: dict) -> dict:
    """Every JSON route that takes an id, aimed at team A's objects: (method, path, body)."""
    a, model_a = t["a"], t["model_a"]
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    new_model = {"model_name": "intruder", "model_info": {"team_id": a}, "litellm_params": {
        "model": "openai/gpt-4o", "api_base": "http://127.0.0.1:9", "api_key": "sk-x-123456789"}}
    return {
        "api.team_info": [("GET", f"/team/info?team_id={a}", None)],
        "api.team_update": [("POST", "/team/update", {"team_id": a, "team_alias": "owned"})],
        "api.team_delete": [("POST", "/team/delete", {"team_ids": [a]})],
        "api.team_block": [("POST", "/team/block", {"team_id": a})],
        "api.team_unblock": [("POST", "/team/unblock", {"team_id": a})],
        "api.team_new": [("POST", "/team/new", {"team_id": a})],
        "api.team_member_add": [("POST", "/team/member_add", {
            "team_id": a, "member": {"user_email": "intruder@example.com", "role": "admin"}})],
        "api.team_member_update": [("POST", "/team/member_update", {
            "team_id": a, "user_email": "alpha-admin@example.com", "role": "user"})],
        "api.team_member_delete": [("POST", "/team/member_delete", {
            "team_id": a, "user_email": "alpha-admin@example.com"})],
        "api.key_info": [("GET", f"/key/info?key={t['token_a']}", None)],
        "api.spend_logs": [("GET", f"/spend/logs?team_id={a}", None)],
        "api.spend_report": [("GET", f"/global/spend/report?team_id={a}", None)],
        "api.prometheus_metrics": [("GET", "/metrics", None)],  # names every team's series
        "api.key_update": [("POST", "/key/update", {"key": t["token_a"], "blocked": True})],
        "api.key_delete": [("POST", "/key/delete", {"keys": [t["token_a"]]}),
                           ("POST", "/key/delete", {"key_aliases": ["alpha-key-alias"]})],
        "api.key_generate": [("POST", "/key/generate", {"team_id": a})],
        "api.key_regenerate": [("POST", "/key/regenerate", {"key": t["token_a"]}),
                               ("POST", f"/key/{t['token_a']}/regenerate", None)],
        "api.key_block": [("POST", "/key/block", {"key": t["token_a"]})],
        "api.key_unblock": [("POST", "/key/unblock", {"key": t["token_a"]})],
        "api.user_new": [("POST", "/user/new", {"user_email": "in@example.com", "teams": [a]})],
        "api.user_info": [("GET", f"/user/info?user_id={t['user_a']}", None)],
        "api.user_update": [("POST", "/user/update", {"user_id": t["user_a"],
                                                      "user_role": "proxy_admin"})],
        "api.user_list": [("GET", "/user/list", None)],
        "api.health": [("GET", "/health", None)],
        "api.user_delete": [("POST", "/user/delete", {"user_ids": [t["user_a"]]})],
        "api.model_new": [("POST", "/model/new", new_model), ("POST", "/model/add", new_model)],
        "api.model_update": [("POST", "/model/update", {
            "model_info": {"id": model_a["model_id"]}, "model_name": "owned"}),
            ("POST", "/model/update", {"model_info": {"id": model_a["model_id"]},
                                       "litellm_params": {"api_base": "http://127.0.0.1:9",
                                                          "api_key": "sk-x-123456789"}})],
        "api.model_delete": [("POST", "/model/delete", {"id": model_a["model_id"]})],
        "proxy.chat_completions": [
            (m, p, {"model": name, **chat}) for p in ("/v1/chat/completions", "/chat/completions")
            for m, name in (("POST", "alpha-model"), ("POST", model_a["model_name"]),
                            ("POST", model_a["model_id"]))],
        "proxy.embeddings": [("POST", p, {"model": name, "input": "hi"})
                             for p in ("/v1/embeddings", "/embeddings")
                             for name in ("alpha-model", model_a["model_name"])],
        "proxy.v1_messages": [
            ("POST", p, {"model": name, "max_tokens": 5, "messages": chat["messages"]})
            for p in ("/v1/messages", "/anthropic/v1/messages")
            for name in ("alpha-model", model_a["model_name"], model_a["model_id"])],
        "proxy.responses": [("POST", p, {"model": name, "input": "hi"})
                            for p in ("/v1/responses", "/responses")
                            for name in ("alpha-model", model_a["model_name"])] + [
            ("POST", "/v1/responses", {"model": "beta-model", "input": "hi",
                                       "previous_response_id": RESPONSE_A})],
        "proxy.response": [(m, f"{p}/responses/{RESPONSE_A}", None)
                           for p in ("/v1", "") for m in ("GET", "DELETE")],
        "proxy.response_cancel": [("POST", f"{p}/responses/{RESPONSE_A}/cancel", None)
                                  for p in ("/v1", "")],
        "proxy.response_input_items": [("GET", f"{p}/responses/{RESPONSE_A}/input_items", None)
                                       for p in ("/v1", "")],
        **surface_attacks(model_a),
        "proxy.v1_messages_count_tokens": [
            ("POST", p, {"model": name, "messages": chat["messages"]})
            for p in ("/v1/messages/count_tokens", "/anthropic/v1/messages/count_tokens")
            for name in ("alpha-model", model_a["model_name"])],
    }


def surface_attacks(model_a: dict) -> dict:
    """The completions, images, audio and moderation routes, their Azure-style forms and the
    model lookup, aimed at team A's model by its public name, internal name and id."""
    names = ("alpha-model", model_a["model_name"], model_a["model_id"])
    bodies = {"completions": {"prompt": "hi"}, "images_generations": {"prompt": "a cat"},
              "audio_speech": {"input": "hi", "voice": "alloy"}, "moderations": {"input": "hi"},
              "audio_transcriptions": {"file": UPLOAD},
              "chat_completions": {"messages": [{"role": "user", "content": "hi"}]},
              "embeddings": {"input": "hi"}}
    table = {}
    for endpoint, body in bodies.items():
        path = endpoint.replace("_", "/")
        if endpoint not in ("chat_completions", "embeddings"):
            table[f"proxy.{endpoint}"] = [
                ("POST", p, {"model": name, **body}) for p in (f"/v1/{path}", f"/{path}")
                for name in names]
        if endpoint != "moderations":  # Azure OpenAI has no moderations
            table[f"proxy.deployments_{endpoint}"] = [
                ("POST", f"/openai/deployments/{name}/{path}?api-version=2024-10-21",
                 {"model": "beta-model", **body}) for name in names]
    table["proxy.model_retrieve"] = [("GET", f"{p}/{name}", None) for p in ("/v1/models",
                                                                           "/models")
                                     for name in names]
    return table


UPLOAD = "<an audio file>"  # sent as a multipart file part


def _send(client, method: str, path: str, body, key: str):
    if body is not None and body.get("file") == UPLOAD:
        fields = {**body, "file": (io.BytesIO(b"RIFF....WAVEfmt "), "speech.wav")}
        return client.open(path, method=method, data=fields, headers=bearer(key),
                           content_type="multipart/form-data")
    return client.open(path, method=method, json=body, headers=bearer(key))


def leaked(response, request_text: str, secrets: dict) -> list[str]:
    """Team A's data in a response, apart from what the caller itself sent."""
    text = response.get_data(as_text=True) + json.dumps(dict(response.headers))
    return [what for what, value in secrets.items()
            if value in text and value not in request_text]


def test_team_b_cannot_touch_team_a_through_any_route_that_takes_an_id(app, client, two_teams):
    table = attacks(two_teams)
    covered = set(table) | {"api.model_info", "api.team_list", "api.key_list", "proxy.models",
                            "api.model_group_info"}
    wanting = {endpoint for endpoint, view in app.view_functions.items()
               if getattr(view, "access", None) in (access.ANY_KEY, access.ADMIN)}
    assert wanting - covered == set(), "a new route needs its row in the two-team matrix"
    for caller, key in two_teams["callers"].items():
        for endpoint, requests_ in table.items():
            for method, path, body in requests_:
                response = _send(client, method, path, body, key)
                where = f"{caller}: {method} {path} {body}"
                expected = (404,) if endpoint == "proxy.model_retrieve" or RESPONSE_A in (
                    path + json.dumps(body)) else (
                    (400,) if endpoint.startswith("proxy.") else (403, 404))
                assert response.status_code in expected, (where, response.json)
                assert leaked(response, path + json.dumps(body), two_teams["secrets"]) == [], \
                    where
    # and nothing of team A changed
    info = client.get(f"/team/info?team_id={two_teams['a']}", headers=ADMIN).json
    assert info["team_info"]["team_alias"] == "Alpha Confidential Team"
    assert [m["user_email"] for m in info["team_info"]["members_with_roles"]] == [
        "alpha-admin@example.com"]
    assert len(info["keys"]) == 1 and info["keys"][0]["key_alias"] == "alpha-key-alias"
    models = client.get("/model/info", headers=bearer(two_teams["key_a"])).json["data"]
    assert [(m["model_name"], m["litellm_params"]["api_base"]) for m in models] == [
        ("alpha-model", two_teams["model_a"]["litellm_params"]["api_base"])]


def test_model_info_by_id_of_another_team_returns_nothing(client, two_teams):
    model_id = two_teams["model_a"]["model_id"]
    for key in two_teams["callers"].values():
        response = client.get(f"/model/info?litellm_model_id={model_id}", headers=bearer(key))
        assert response.status_code == 200 and response.json["data"] == []


def test_listings_of_team_b_never_show_team_a(client, two_teams):
    secrets = two_teams["secrets"]
    for caller, key in two_teams["callers"].items():
        for path in LISTINGS:
            response = client.get(path, headers=bearer(key))
            assert response.status_code == 200, (caller, path)
            assert leaked(response, "", secrets) == [], (caller, path)
    names = [m["id"] for m in client.get("/v1/models",
                                         headers=bearer(two_teams["callers"]["team B key"])).json[
        "data"]]
    assert names == ["beta-model"]


def test_ownership_comes_from_the_server_not_the_body(client, two_teams):
    key_b = two_teams["callers"]["team B key"]
    own = client.get("/model/info", headers=bearer(key_b)).json["data"][0]
    moved = client.post("/model/update", headers=bearer(key_b), json={
        "model_info": {"id": own["model_id"], "team_id": two_teams["a"]}})
    assert moved.status_code == 400 and moved.json["error"]["param"] == "model_info.team_id"
    again = client.get(f"/model/info?litellm_model_id={own['model_id']}", headers=bearer(key_b))
    assert again.json["data"][0]["model_info"]["team_id"] == two_teams["b"]
    refused = client.post("/key/update", headers=bearer(key_b), json={
        "key": key_b, "team_id": two_teams["a"]})
    assert refused.status_code == 400 and "team_id" in refused.json["error"]["message"]
