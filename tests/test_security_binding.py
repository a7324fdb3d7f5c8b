"""A stored provider key goes only to the host it was saved for: through /model/new and
/model/update, the dashboard's form, its "Test before saving" and "Test", and at call time.
upstream is team A's real host; upstream_b plays a host an attacker controls."""
import json

from flask_migrate import upgrade
from sqlalchemy import select, text

from tests.conftest import ADMIN, bearer, insert_rows, migrated_to
from tests.fake_upstream import Reply
from webapp.extensions import db
from webapp.models import AuditEntry, Deployment, ProviderCredential

CREDENTIAL = "Sweden Azure key"
CREDENTIAL_SECRET = "sk-cred-canary-9876"
OWN_SECRET = "sk-provider-team-a-secret-1234"
FORM = {"provider": "openai", "model": "gpt-4o", "api_version": "2023-12-01-preview"}


def leaked(server, secret: str) -> bool:
    return any(secret in json.dumps(r.headers) or secret in json.dumps(r.body)
               for r in server.received)


def chat(client, key, model):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": model, "messages": [{"role": "user", "content": "hi"}]})


def credential_model(client, world, api_base, name="legit", key=None):
    body = {"model_name": name, "litellm_params": {
        "model": "openai/gpt-4o", "api_base": api_base, "api_version": "2023-12-01-preview",
        "litellm_credential_name": CREDENTIAL}, "model_info": {"team_id": world.team_a}}
    return client.post("/model/new", json=body, headers=bearer(key) if key else ADMIN)


def bindings(app, world) -> list:
    with app.app_context():
        return db.session.get(ProviderCredential, world.credential_a).bound_origins


def test_model_new_cannot_send_a_named_key_to_a_new_host(app, client, world, upstream,
                                                         upstream_b):
    assert credential_model(client, world, upstream.url).status_code == 200
    stolen = credential_model(client, world, upstream_b.url, "stolen", world.team_a_key)
    chat(client, world.team_a_key, "stolen")
    assert stolen.status_code == 400, stolen.json
    assert stolen.json["error"]["param"] == "litellm_params.litellm_credential_name"
    assert "Provider keys" in stolen.json["error"]["message"]
    assert not leaked(upstream_b, CREDENTIAL_SECRET)
    assert chat(client, world.team_a_key, "legit").status_code == 200
    assert upstream.received[-1].headers["api-key"] == CREDENTIAL_SECRET


def test_model_update_cannot_send_a_stored_key_to_a_new_host(client, world, upstream,
                                                             upstream_b):
    key = world.team_a_key
    legit = credential_model(client, world, upstream.url).json
    moved = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": legit["model_id"]},
        "litellm_params": {"api_base": upstream_b.url, "litellm_credential_name": CREDENTIAL}})
    # a model of the attacker's own, at its host, then given the team's named key
    decoy = client.post("/model/new", headers=bearer(key), json={
        "model_name": "decoy", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": upstream_b.url,
            "api_version": "2023-12-01-preview", "api_key": "sk-attacker-own-key-0000"},
        "model_info": {"team_id": world.team_a}})
    assert decoy.status_code == 200
    swapped = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": decoy.json["model_id"]},
        "litellm_params": {"litellm_credential_name": CREDENTIAL}})
    kept = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": world.model_a["model_id"]},
        "litellm_params": {"api_base": upstream_b.url}})
    for model in ("legit", "decoy", "my-team-model"):
        chat(client, key, model)
    for response in (moved, swapped):
        assert response.status_code == 400, response.json
        assert response.json["error"]["param"] == "litellm_params.litellm_credential_name"
    assert kept.status_code == 400 and kept.json["error"]["param"] == "litellm_params.api_key"
    assert not leaked(upstream_b, CREDENTIAL_SECRET) and not leaked(upstream_b, OWN_SECRET)


def test_the_same_host_with_another_path_keeps_the_key(client, world, upstream):
    moved = client.post("/model/update", headers=bearer(world.team_a_key), json={
        "model_info": {"id": world.model_a["model_id"]},
        "litellm_params": {"api_base": upstream.url + "/"}})
    assert moved.status_code == 200, moved.json
    assert chat(client, world.team_a_key, "my-team-model").status_code == 200
    assert upstream.received[-1].headers["api-key"] == OWN_SECRET


def test_first_use_binds_an_unbound_named_key_and_is_audited(app, client, world, upstream):
    assert bindings(app, world) == []
    assert credential_model(client, world, upstream.url, key=world.team_a_key).status_code == 200
    host = upstream.url.removeprefix("http://")
    assert bindings(app, world) == [f"http://{host}"]
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "credential.bind"))
        assert entry.object_id == world.credential_a and entry.team_id == world.team_a
        assert entry.after["bound_origins"] == [f"http://{host}"]
        assert entry.actor == "key:a-key"


def test_dashboard_test_before_saving_obeys_the_binding(app, client, world, as_user, upstream,
                                                         upstream_b):
    credential_model(client, world, upstream.url)
    upstream_b.reply(Reply(status=400, body={"error": {"message": "echo UPSTREAM-MARKER"}}))
    result = as_user("member").post(f"/ui/teams/{world.team_a}/models/test", {
        **FORM, "model_name": "probe", "api_base": upstream_b.url, "credential": CREDENTIAL})
    body = result.get_data(as_text=True)
    assert not leaked(upstream_b, CREDENTIAL_SECRET) and upstream_b.received == []
    assert "Provider keys" in body and "UPSTREAM-MARKER" not in body


def test_probe_results_never_echo_what_the_upstream_said(world, as_user, upstream_b):
    member = as_user("member")
    form = {**FORM, "model_name": "probe", "api_base": upstream_b.url,
            "api_key": "sk-pasted-probe-key-4321", "credential": ""}
    for status in (400, 401, 404, 429, 500):
        upstream_b.reply(Reply(status=status, body={"error": {
            "message": "<b>UPSTREAM-MARKER</b> api-key header was sk-pasted-probe-key-4321"}}))
        body = member.post(f"/ui/teams/{world.team_a}/models/test", form).get_data(as_text=True)
        assert f"Failed ({401 if status == 401 else status if status < 500 else 502})" in body
        assert "UPSTREAM-MARKER" not in body and "sk-pasted-probe-key-4321" not in body, status
    upstream_b.reply(Reply(status=200, body=b"<html>UPSTREAM-MARKER</html>"))
    body = member.post(f"/ui/teams/{world.team_a}/models/test", form).get_data(as_text=True)
    assert "Failed (502)" in body and "UPSTREAM-MARKER" not in body
    body = member.post(f"/ui/teams/{world.team_a}/models/test", form).get_data(as_text=True)
    assert "OK</strong>" in body and "Sunny, 22 degrees." in body


def test_dashboard_edit_cannot_point_a_stored_key_at_a_new_host(client, world, as_user, upstream,
                                                                upstream_b):
    legit = credential_model(client, world, upstream.url).json
    member = as_user("member")
    url = f"/ui/teams/{world.team_a}/models/{legit['model_id']}/edit"
    form = {**FORM, "model_name": "legit", "api_base": upstream_b.url, "api_key": ""}
    kept = member.post(url, {**form, "credential": ""})
    chosen = member.post(url, {**form, "credential": CREDENTIAL})
    member.post(f"/ui/teams/{world.team_a}/models/{legit['model_id']}/test")
    for response in (kept, chosen):
        assert response.status_code == 400
        assert "Provider keys" in response.get_data(as_text=True)
    assert upstream_b.received == []


def test_only_a_team_admin_rebinds_and_the_rebinding_is_audited(app, client, world, as_user,
                                                                upstream, upstream_b):
    legit = credential_model(client, world, upstream.url).json
    url = f"/ui/teams/{world.team_a}/credentials/{world.credential_a}/bind"
    refused = as_user("member").post(url, {"api_base": upstream_b.url})
    assert refused.status_code == 403 and len(bindings(app, world)) == 1
    allowed = as_user("team_admin").post(url, {"api_base": upstream_b.url + "/openai"})
    assert allowed.status_code == 302
    host_b = upstream_b.url.removeprefix("http://")
    assert bindings(app, world)[1] == f"http://{host_b}"
    page = as_user("team_admin").get(f"/ui/teams/{world.team_a}/credentials")
    assert f"http://{host_b}" in page.get_data(as_text=True)
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "credential.bind").order_by(AuditEntry.id)).all()[-1]
        assert entry.actor == "a-admin@example.com"
        assert entry.after["bound_origins"] == bindings(app, world)
    moved = client.post("/model/update", headers=bearer(world.team_a_key), json={
        "model_info": {"id": legit["model_id"]}, "litellm_params": {"api_base": upstream_b.url}})
    assert moved.status_code == 200, moved.json
    assert chat(client, world.team_a_key, "legit").status_code == 200
    assert upstream_b.received[-1].headers["api-key"] == CREDENTIAL_SECRET


def test_a_key_pasted_with_its_api_base_is_bound_from_the_start(client, world, as_user,
                                                                upstream, upstream_b):
    member = as_user("member")
    created = member.post(f"/ui/teams/{world.team_a}/credentials", {
        "name": "Paris key", "secret": "sk-paris-secret-abcd", "api_base": upstream.url})
    assert created.status_code == 302
    page = member.get(f"/ui/teams/{world.team_a}/credentials").get_data(as_text=True)
    assert upstream.url in page
    body = {"model_name": "paris", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": upstream_b.url,
        "litellm_credential_name": "Paris key"}, "model_info": {"team_id": world.team_a}}
    assert client.post("/model/new", json=body, headers=bearer(world.team_a_key)
                       ).status_code == 400
    body["litellm_params"]["api_base"] = upstream.url
    assert client.post("/model/new", json=body, headers=bearer(world.team_a_key)
                       ).status_code == 200


def test_a_stored_row_pointing_a_key_elsewhere_is_refused_at_call_time(
        app, client, world, as_user, upstream, upstream_b):
    legit = credential_model(client, world, upstream.url).json
    with app.app_context():  # as if the database had been edited behind Teamgate's back
        for model_id in (legit["model_id"], world.model_a["model_id"]):
            row = db.session.get(Deployment, model_id)
            row.params = {**row.params, "api_base": upstream_b.url}
        db.session.commit()
    for model in ("legit", "my-team-model"):
        response = chat(client, world.team_a_key, model)
        assert response.status_code == 403, response.json
        assert "not bound" in response.json["error"]["message"]
    test = as_user("member").post(f"/ui/teams/{world.team_a}/models/{legit['model_id']}/test")
    assert "not bound" in test.get_data(as_text=True)
    assert upstream_b.received == []


def test_the_upgrade_binds_existing_keys_to_where_their_models_send_them(empty_database):
    stamp = "2026-01-01 00:00:00"
    common = {"created_by": "admin", "updated_by": "admin", "created_at": stamp,
              "updated_at": stamp}
    rows = {
        "teams": [{"id": "team-a", "models": "[]", "metadata": "{}", "limits": "{}",
                   "blocked": False, "created_at": stamp, "updated_at": stamp}],
        "provider_credentials": [
            {"id": "cred-1", "team_id": "team-a", "name": "shared", **common,
             "secret_encrypted": "v1.AAAA", "secret_masked": "sk-...1111"},
            {"id": "cred-2", "team_id": "team-a", "name": "unused", **common,
             "secret_encrypted": "v1.AAAA", "secret_masked": "sk-...2222"}],
        "deployments": [
            {"id": f"dep-{n}", "team_id": "team-a", "model_name": f"m{n}", "public_name": f"m{n}",
             "provider": provider, "params": json.dumps(params), "model_info": "{}",
             "api_key_encrypted": encrypted, "credential_id": credential, **common}
            for n, (provider, params, encrypted, credential) in enumerate([
                ("azure", {"model": "azure/x", "api_base": "https://Own.example.com:8443/v1"},
                 "v1.AAAA", None),
                ("openai", {"model": "openai/gpt-4o"}, "v1.AAAA", None),
                ("azure", {"model": "azure/x", "api_base": "https://a.example.com"}, None,
                 "cred-1"),
                ("azure", {"model": "azure/x", "api_base": "http://b.example.com/v1"}, None,
                 "cred-1"),
                ("openai", {"model": "openai/gpt-4o"}, None, None)])]}
    with migrated_to(empty_database, "b7c4e2f19a30"):
        insert_rows(rows)
        upgrade()
        origins = dict(db.session.execute(text(
            "SELECT id, secrets_origin FROM deployments")).all())
        assert origins == {"dep-0": "https://own.example.com:8443",
                           "dep-1": "https://api.openai.com:443", "dep-2": None,
                           "dep-3": None, "dep-4": None}
        bound = {row.id: row.bound_origins for row in db.session.scalars(
            select(ProviderCredential))}
        assert bound == {"cred-1": ["http://b.example.com:80", "https://a.example.com:443"],
                         "cred-2": []}
