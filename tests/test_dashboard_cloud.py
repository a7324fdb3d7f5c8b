"""Bedrock and Vertex AI models registered through the dashboard's form (its fields swapped per
provider), tested with the Test button and called through the proxy against loopback servers
that speak their wire formats; and their endpoints under the egress rules, before anything is
sent."""
import json

import pytest

from tests.conftest import bearer
from tests.fake_bedrock import FakeBedrock
from tests.fake_vertex import FakeGoogle, new_key, service_account
from tests.test_bedrock import ACCESS_KEY, CLAUDE, SECRET_KEY
from tests.test_vertex import EMAIL

CHAT = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}


@pytest.fixture
def bedrock():
    server = FakeBedrock(ACCESS_KEY, SECRET_KEY)
    yield server
    server.close()


@pytest.fixture
def google():
    server, key = FakeGoogle(), new_key()
    server.trust(EMAIL, key)
    server.service_account = service_account(key, server.url + "/token")
    yield server
    server.close()


def bedrock_form(bedrock) -> dict:
    return {"model_name": "dash-claude", "provider": "bedrock", "model": CLAUDE,
            "credential": "", "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY, "aws_region_name": "us-east-1",
            "aws_bedrock_runtime_endpoint": bedrock.url}


def vertex_form(google) -> dict:
    return {"model_name": "dash-gemini", "provider": "vertex_ai", "model": "gemini-1.5-pro",
            "credential": "", "vertex_credentials": google.service_account,
            "api_base": google.url}


def registered(app, client, team_id: str, form: dict) -> str:
    response = client.post(f"/ui/teams/{team_id}/models/new", form)
    assert response.status_code == 302, response.get_data(as_text=True)
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Deployment
    with app.app_context():
        return db.session.scalar(select(Deployment.id).where(
            Deployment.public_name == form["model_name"]))


def test_the_form_shows_each_cloud_providers_own_fields(world, as_user):
    client = as_user("member")
    fields = {name: client.get(f"/ui/teams/{world.team_a}/models/fields?provider={name}")
              .get_data(as_text=True) for name in ("bedrock", "vertex_ai")}
    for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                 "aws_region_name", "aws_bedrock_runtime_endpoint"):
        assert f'name="{name}"' in fields["bedrock"] and f'name="{name}"' not in fields[
            "vertex_ai"]
    for name in ("vertex_project", "vertex_location", "vertex_credentials"):
        assert f'name="{name}"' in fields["vertex_ai"]
    assert 'type="password"' in fields["bedrock"] and 'name="api_key"' not in fields["bedrock"]


@pytest.mark.parametrize("provider", ["bedrock", "vertex_ai"])
def test_a_cloud_model_registered_through_the_form_answers_its_test_and_calls(
        app, client, world, as_user, bedrock, google, provider):
    form, fake = ((bedrock_form(bedrock), bedrock) if provider == "bedrock"
                  else (vertex_form(google), google))
    member = as_user("member")
    model_id = registered(app, member, world.team_a, form)
    listing = member.get(f"/ui/teams/{world.team_a}/models").get_data(as_text=True)
    assert form["model_name"] in listing and SECRET_KEY not in listing
    assert "PRIVATE KEY" not in listing
    tested = member.post(f"/ui/teams/{world.team_a}/models/{model_id}/test")
    assert "Sunny, 22 degrees." in tested.get_data(as_text=True)
    drafted = member.post(f"/ui/teams/{world.team_a}/models/test", {**form, "model_name": "x"})
    assert "Sunny, 22 degrees." in drafted.get_data(as_text=True)
    answer = client.post("/v1/chat/completions", headers=bearer(world.team_a_key),
                         json={"model": form["model_name"], **CHAT})
    assert answer.status_code == 200, answer.json
    assert answer.json["choices"][0]["message"]["content"] == "Sunny, 22 degrees."
    assert len([r for r in fake.received if r.path != "/token"]) == 3


@pytest.mark.parametrize("provider", ["bedrock", "vertex_ai"])
def test_a_cloud_endpoint_on_a_private_address_is_refused_before_anything_is_sent(
        app, client, world, as_user, bedrock, google, provider):
    form, fake = ((bedrock_form(bedrock), bedrock) if provider == "bedrock"
                  else (vertex_form(google), google))
    member = as_user("member")
    model_id = registered(app, member, world.team_a, form)  # loopback allowed when saved
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""  # ... and private again now
    tested = member.post(f"/ui/teams/{world.team_a}/models/{model_id}/test")
    drafted = member.post(f"/ui/teams/{world.team_a}/models/test", {**form, "model_name": "x"})
    answer = client.post("/v1/chat/completions", headers=bearer(world.team_a_key),
                         json={"model": form["model_name"], **CHAT})
    for text in (tested.get_data(as_text=True), drafted.get_data(as_text=True),
                 json.dumps(answer.json)):
        assert "TEAMGATE_UPSTREAM_ALLOW" in text
    assert answer.status_code == 400
    assert fake.received == []  # not even a token grant


@pytest.mark.parametrize("provider", ["bedrock", "vertex_ai"])
def test_a_cloud_endpoint_at_teamgate_itself_is_refused_before_the_call(
        app, client, world, as_user, bedrock, google, provider):
    form, fake = ((bedrock_form(bedrock), bedrock) if provider == "bedrock"
                  else (vertex_form(google), google))
    registered(app, as_user("member"), world.team_a, form)
    # as if Teamgate served on the endpoint's address: a call there would come back to it
    app.config["TEAMGATE_LISTEN"] = (fake.server.server_address[:2],)
    answer = client.post("/v1/chat/completions", headers=bearer(world.team_a_key),
                         json={"model": form["model_name"], **CHAT})
    assert answer.status_code == 400 and "Teamgate itself" in answer.json["error"]["message"]
    assert fake.received == []
