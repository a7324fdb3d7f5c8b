"""Provider keys, team keys, the alias table and resolver, playground, usage and audit pages."""
import json
import re

import openai
import pytest

from tests.fake_upstream import Reply, chunk
from webapp.extensions import db
from webapp.models import ProviderCredential


def test_provider_key_pasted_once_shown_masked_and_replaced(app, world, as_user):
    client = as_user("member")
    url = f"/ui/teams/{world.team_a}/credentials"
    assert client.post(url, {"name": "Paris key", "secret": "sk-paris-secret-abcd"}
                       ).status_code == 302
    body = client.get(url).get_data(as_text=True)
    assert "Paris key" in body and "sk-...abcd" in body and "sk-paris-secret-abcd" not in body
    duplicate = client.post(url, {"name": "Paris key", "secret": "sk-other-secret-0000"})
    assert duplicate.status_code == 400 and "already has a provider key" in duplicate.get_data(
        as_text=True)
    replace = client.post(f"{url}/{world.credential_a}/replace", {"secret": "sk-replaced-zzzz1"})
    assert replace.status_code == 302
    with app.app_context():
        assert db.session.get(ProviderCredential, world.credential_a).secret_masked == "sk-...zzz1"


def test_provider_key_in_use_cannot_be_deleted(app, world, as_user, upstream):
    client = as_user("member")
    client.post(f"/ui/teams/{world.team_a}/models/new", {
        "model_name": "uses-cred", "provider": "openai", "model": "gpt-4o",
        "api_base": upstream.url, "credential": "Sweden Azure key"})
    response = client.post(f"/ui/teams/{world.team_a}/credentials/{world.credential_a}/delete")
    assert response.status_code == 400 and "used by models" in response.get_data(as_text=True)


def test_team_key_shown_once_then_revoked(app, world, as_user, live):
    client = as_user("team_admin")
    url = f"/ui/teams/{world.team_a}/keys"
    response = client.post(url, {"key_alias": "ci-bot", "duration": "30d"})
    body = response.get_data(as_text=True)
    secret = body.split('id="new-key" class="secret">')[1].split("<")[0]
    assert secret.startswith("sk-") and 'data-copy="#new-key"' in body
    listing = client.get(url).get_data(as_text=True)
    assert secret not in listing and f"sk-...{secret[-4:]}" in listing
    models = openai.OpenAI(api_key=secret, base_url=live.url + "/v1").models.list()
    assert [m.id for m in models.data] == ["my-team-model", "global-model"]
    from webapp.crypto import hash_key
    assert client.post(f"{url}/{hash_key(secret)}/revoke").status_code == 302
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key=secret, base_url=live.url + "/v1", max_retries=0).models.list()


def test_a_keys_last_use_shows_after_a_call(app, world, as_user, live, upstream):
    url = f"/ui/teams/{world.team_a}/keys"
    client = as_user("team_admin")

    def last_used() -> str:
        listing = client.get(url).get_data(as_text=True)
        row = listing.split(f"sk-...{world.team_a_key[-4:]}")[1].split("</tr>")[0]
        return row.split('<td data-label="Last used">')[1].split("</td>")[0]

    assert last_used() == "never"
    api = openai.OpenAI(api_key=world.team_a_key, base_url=live.url + "/v1", max_retries=0)
    api.chat.completions.create(model="my-team-model", messages=[{"role": "user", "content": "x"}])
    app.extensions["teamgate.request_log"].flush()
    shown = last_used()
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+Z">\d{4}-\d\d-\d\d \d\d:\d\d UTC'
                     r'</time>', shown), shown
    used_at = client.get(f"/key/info?key={world.team_a_key}",
                         headers={"Authorization": f"Bearer {world.team_a_key}"}).json
    assert used_at["info"]["last_used_at"]


def test_alias_table_and_resolver(app, world, as_user, seed):
    client = as_user("member")
    body = client.get(f"/ui/teams/{world.team_a}/aliases").get_data(as_text=True)
    assert f"my-team-model → {world.model_a['model_name']}" in body
    assert "b-secret-model" not in body
    resolve = f"/ui/teams/{world.team_a}/aliases/resolve"
    found = client.get(f"{resolve}?name=my-team-model", headers={"HX-Request": "true"})
    assert "resolves through the team&#39;s alias table" in found.get_data(as_text=True)
    missing = client.get(f"{resolve}?name=b-secret-model").get_data(as_text=True)
    unknown = client.get(f"{resolve}?name=no-such-model").get_data(as_text=True)
    assert "(not_found)" in missing and "(not_found)" in unknown
    # the same page either way; CSRF tokens carry the second they were made, so they are set aside
    without_tokens = re.compile(r'(csrf-token" content|name="csrf_token" value)="[^"]*"')
    assert (without_tokens.sub("", missing.replace("b-secret-model", "X"))
            == without_tokens.sub("", unknown.replace("no-such-model", "X")))
    restricted_key = seed.key(world.team_a, models=["global-model"], key_alias="restricted")
    from webapp.crypto import hash_key
    answer = client.get(f"{resolve}?name=my-team-model&key={hash_key(restricted_key)}")
    assert "(key_restricted)" in answer.get_data(as_text=True)
    assert "global-model" in answer.get_data(as_text=True)


def test_playground_streams_through_the_proxy(app, world, as_user, upstream):
    upstream.reply(Reply(chunks=[chunk("Hel"), chunk("lo"), chunk(None, "stop"), b"[DONE]"]))
    client = as_user("member")
    response = client.post(f"/ui/teams/{world.team_a}/playground/chat",
                           data=json.dumps({"model": "my-team-model", "stream": True,
                                            "messages": [{"role": "user", "content": "Hi"}]}),
                           content_type="application/json")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    text = response.get_data(as_text=True)
    assert '"Hel"' in text and text.rstrip().endswith("data: [DONE]")
    other = as_user("member").post(f"/ui/teams/{world.team_a}/playground/chat",
                                   data=json.dumps({"model": "b-secret-model", "messages": [
                                       {"role": "user", "content": "Hi"}]}),
                                   content_type="application/json")
    assert other.status_code == 400 and "Invalid model name" in other.json["error"]["message"]


def test_usage_page_counts_calls_per_model_and_key(app, world, as_user, live, upstream):
    from tests.fake_upstream import Reply as R
    upstream.reply(R(), R(status=400, body={"error": {"message": "bad"}}))
    api = openai.OpenAI(api_key=world.team_a_key, base_url=live.url + "/v1", max_retries=0)
    api.chat.completions.create(model="my-team-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="my-team-model",
                                    messages=[{"role": "user", "content": "x"}])
    app.extensions["teamgate.request_log"].flush()
    body = as_user("member").get(f"/ui/teams/{world.team_a}/usage").get_data(as_text=True)
    assert "<svg" in body and "my-team-model" in body
    row = body.split('<td data-label="Model">my-team-model</td>')[1]
    assert '<td data-label="Requests">2</td><td data-label="Errors">1</td>' in row
    assert '<td data-label="Tokens">17</td>' in row
    assert world.team_a_key[-4:] in body
    assert "7d" in as_user("member").get(
        f"/ui/teams/{world.team_a}/usage?period=7d").get_data(as_text=True)


def test_audit_trail_for_team_admins_and_the_site_admin(app, world, as_user):
    member = as_user("member")
    member.post(f"/ui/teams/{world.team_a}/credentials",
                {"name": "Audited", "secret": "sk-audited-secret-9999"})
    team_page = as_user("team_admin").get(f"/ui/teams/{world.team_a}/audit").get_data(
        as_text=True)
    assert "credential.create" in team_page and "a-member@example.com" in team_page
    assert "sk-audited-secret-9999" not in team_page and "sk-...9999" in team_page
    assert "b-secret-model" not in team_page
    everything = as_user("admin").get("/ui/admin/audit").get_data(as_text=True)
    assert world.team_b in everything


def test_members_page_adds_and_removes(app, world, as_user):
    client = as_user("team_admin")
    url = f"/ui/teams/{world.team_a}/members"
    assert client.post(url, {"email": "b-member@example.com", "role": "member"}
                       ).status_code == 302
    assert "b-member@example.com" in client.get(url).get_data(as_text=True)
    assert as_user("other").get(f"/ui/teams/{world.team_a}/models").status_code == 200
    assert client.post(f"{url}/remove", {"user_id": world.user_id}).status_code == 302
    assert as_user("other").get(f"/ui/teams/{world.team_a}/models").status_code == 404
    unknown = client.post(url, {"email": "nobody@example.com", "role": "member"})
    assert unknown.status_code == 400
