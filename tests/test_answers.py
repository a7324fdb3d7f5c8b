"""A non-streaming call's answer: an OpenAI-compatible upstream's bytes relayed as they came,
counted in the request log, and never touched by the dashboard's session cookie."""
from sqlalchemy import select

from tests.conftest import bearer
from tests.fake_upstream import Reply
from webapp.extensions import db
from webapp.models import RequestLogEntry

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
# key order, spacing and a non-ASCII character that re-serialising would all change
UPSTREAM_BYTES = ('{"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},\n'
                  ' "id": "chatcmpl-x", "object": "chat.completion", "model": "gpt-4o",\n'
                  ' "choices": [{"index": 0, "finish_reason": "stop",\n'
                  '   "message": {"role": "assistant", "content": "Grüße"}}]}').encode()


def test_openai_compatible_answer_is_relayed_byte_for_byte(app, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    upstream.reply(Reply(body=UPSTREAM_BYTES))
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 200
    assert response.data == UPSTREAM_BYTES
    assert response.mimetype == "application/json"
    assert response.json["choices"][0]["message"]["content"] == "Grüße"
    app.extensions["teamgate.request_log"].flush()
    with app.app_context():
        row = db.session.scalar(select(RequestLogEntry).where(RequestLogEntry.team_id == team_id))
    assert (row.status, row.prompt_tokens, row.completion_tokens) == (200, 3, 4)


def test_an_answer_that_is_not_a_json_object_is_still_a_502(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    upstream.reply(Reply(body=b'["not", "an", "object"]'))
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    assert response.json["error"]["type"] == "upstream_error"


def test_api_calls_ignore_the_dashboard_session(world, as_user, seed, upstream):  # noqa: F811
    dashboard = as_user("member")
    assert dashboard.get("/ui/").status_code == 200
    team_id = seed.team("Team API")
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    # the same browser (session cookie and all) calls the API with a key
    response = dashboard.client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")
    # the dashboard's own pages still read it
    assert "Cookie" in dashboard.get("/ui/").headers.get("Vary", "")


def test_odd_model_names_are_logged_without_losing_the_batch(app, client, seed, upstream):
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import RequestLogEntry

    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    statuses = [client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
                            ).status_code for model in ("x" * 5000, "nul\x00name", "my-team-model")]
    assert statuses == [400, 400, 200]
    assert app.extensions["teamgate.request_log"].flush() == 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RequestLogEntry)) == 2
