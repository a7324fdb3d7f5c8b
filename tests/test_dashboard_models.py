"""A team's models in the dashboard: list, register, edit, delete, test; errors beside fields."""
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Deployment

SEED_FORM = {"model_name": "dash-model", "provider": "openai", "model": "gpt-4o",
             "api_version": "2023-12-01-preview", "credential": "Sweden Azure key"}


def test_list_shows_upstream_url_masked_key_and_author(world, as_user, upstream):
    body = as_user("member").get(f"/ui/teams/{world.team_a}/models").get_data(as_text=True)
    assert "my-team-model" in body
    assert (f"{upstream.url}/openai/deployments/gpt-4o/chat/completions"
            "?api-version=2023-12-01-preview") in body
    assert "sk-...1234" in body and "sk-provider-team-a-secret-1234" not in body
    assert "key:a-key" in body
    assert '<td data-label="Upstream model">gpt-4o</td>' in body  # what goes upstream
    assert "b-secret-model" not in body


def test_register_with_a_named_provider_key_and_call_it(app, world, as_user, upstream):
    client = as_user("member")
    response = client.post(f"/ui/teams/{world.team_a}/models/new",
                           {**SEED_FORM, "api_base": upstream.url})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(Deployment).where(Deployment.public_name == "dash-model"))
        assert row.created_by == "a-member@example.com" and row.credential_id
        assert row.team_id == world.team_a
    result = client.post(f"/ui/teams/{world.team_a}/models/{row.id}/test")
    assert "OK</strong>" in result.get_data(as_text=True)
    assert "Sunny, 22 degrees." in result.get_data(as_text=True)
    assert upstream.received[-1].headers["api-key"] == "sk-cred-canary-9876"


def test_provider_fields_follow_the_provider(world, as_user):
    client = as_user("member")
    azure = client.get(f"/ui/teams/{world.team_a}/models/fields?provider=azure")
    anthropic = client.get(f"/ui/teams/{world.team_a}/models/fields?provider=anthropic")
    assert 'name="api_version"' in azure.get_data(as_text=True)
    assert 'name="api_version"' not in anthropic.get_data(as_text=True)
    assert 'name="api_base"' in anthropic.get_data(as_text=True)
    kept = client.get(f"/ui/teams/{world.team_a}/models/fields?provider=azure&model=gpt-4o"
                      "&api_base=https%3A%2F%2Fexample.openai.azure.com")
    assert 'value="gpt-4o"' in kept.get_data(as_text=True)
    assert 'value="https://example.openai.azure.com"' in kept.get_data(as_text=True)


def test_validation_errors_from_the_service_show_beside_the_field(world, as_user):
    client = as_user("member")
    response = client.post(f"/ui/teams/{world.team_a}/models/new", {
        **SEED_FORM, "provider": "azure", "credential": "", "api_key": "sk-x-12345678901"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Provider azure needs litellm_params.api_base." in body
    assert 'aria-invalid="true"' in body
    response = client.post(f"/ui/teams/{world.team_a}/models/new",
                           {**SEED_FORM, "api_base": "http://169.254.169.254/latest"})
    assert response.status_code == 400
    assert "TEAMGATE_UPSTREAM_ALLOW" in response.get_data(as_text=True)


def test_edit_keeps_the_key_when_blank_and_asks_for_it_when_api_base_changes(
        app, world, as_user, upstream, upstream_b):
    client = as_user("member")
    model_id = world.model_a["model_id"]
    url = f"/ui/teams/{world.team_a}/models/{model_id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert "sk-...1234" in page and "sk-provider-team-a-secret-1234" not in page
    form = {"model_name": "my-team-model", "provider": "openai", "model": "gpt-4o",
            "api_base": upstream.url, "api_version": "2024-06-01", "api_key": "",
            "credential": ""}
    assert client.post(url, form).status_code == 302
    moved = client.post(url, {**form, "api_base": upstream_b.url})
    assert moved.status_code == 400
    assert "requires sending api_key again" in moved.get_data(as_text=True)
    assert client.post(url, {**form, "api_base": upstream_b.url,
                             "api_key": "sk-new-key-for-b-5678"}).status_code == 302
    client.post(f"/ui/teams/{world.team_a}/models/{model_id}/test")
    assert upstream_b.received[-1].headers["api-key"] == "sk-new-key-for-b-5678"


def test_delete_needs_confirmation(app, world, as_user):
    client = as_user("member")
    url = f"/ui/teams/{world.team_a}/models/{world.model_a['model_id']}/delete"
    assert "Are you sure" in client.get(url).get_data(as_text=True) or \
        "Delete my-team-model?" in client.get(url).get_data(as_text=True)
    assert client.post(url).status_code == 302
    with app.app_context():
        assert db.session.get(Deployment, world.model_a["model_id"]) is None


def test_test_button_shows_the_providers_error_in_plain_words(world, as_user, upstream):
    from tests.fake_upstream import Reply
    upstream.reply(Reply(status=401, body={"error": {"message": "Incorrect API key provided"}}))
    response = as_user("member").post(
        f"/ui/teams/{world.team_a}/models/{world.model_a['model_id']}/test")
    body = response.get_data(as_text=True)
    assert "Failed (401)" in body and "The provider refused the key." in body
    assert "Incorrect API key provided" not in body  # the upstream's own words stay out


def test_test_before_saving(world, as_user, upstream):
    response = as_user("member").post(f"/ui/teams/{world.team_a}/models/test",
                                      {**SEED_FORM, "api_base": upstream.url})
    assert "Sunny, 22 degrees." in response.get_data(as_text=True)
    assert upstream.received[-1].headers["api-key"] == "sk-cred-canary-9876"


def test_another_teams_model_is_not_found_by_url(world, as_user):
    client = as_user("other")
    model_id = world.model_a["model_id"]
    for url in (f"/ui/teams/{world.team_b}/models/{model_id}/edit",
                f"/ui/teams/{world.team_a}/models/{model_id}/edit"):
        assert client.get(url).status_code == 404
    assert client.post(f"/ui/teams/{world.team_b}/models/{model_id}/test").status_code == 404


def test_names_render_as_text(app, world, as_user, upstream):
    client = as_user("member")
    evil = "<script>alert(1)</script>{{7*7}}"
    assert client.post(f"/ui/teams/{world.team_a}/models/new",
                       {**SEED_FORM, "model_name": evil, "api_base": upstream.url}
                       ).status_code == 302
    admin = as_user("admin")
    admin.post("/ui/admin/teams", {"team_alias": evil})
    for page in (f"/ui/teams/{world.team_a}/models", f"/ui/teams/{world.team_a}/aliases",
                 f"/ui/teams/{world.team_a}/playground", "/ui/admin/teams", "/ui/"):
        body = (admin if page.startswith("/ui/admin") or page == "/ui/" else client).get(
            page).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in body, page
        assert "{{7*7}}" in body, page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}" in admin.get(
        "/ui/admin/teams").get_data(as_text=True)


def test_test_button_goes_through_the_egress_check(app, world, as_user, upstream):
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""  # loopback is private again
    seen = len(upstream.received)
    before = as_user("member").post(f"/ui/teams/{world.team_a}/models/test",
                                    {**SEED_FORM, "api_base": upstream.url})
    saved = as_user("member").post(
        f"/ui/teams/{world.team_a}/models/{world.model_a['model_id']}/test")
    for response in (before, saved):
        assert "TEAMGATE_UPSTREAM_ALLOW" in response.get_data(as_text=True)
    assert len(upstream.received) == seen
