"""Every JSON answer (management API, proxy, errors) carries X-Content-Type-Options: nosniff, so
no browser reads a body that echoes a caller's text (a model name, a field) as HTML or script."""
import pytest
import requests

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply
from webapp.services import resolver

NOSNIFF = ("X-Content-Type-Options", "nosniff")
CHAT = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key(seed, upstream):
    return seed.team_with_model(upstream.url)[1]


def test_json_answers_of_every_kind_say_nosniff(client, key, upstream, monkeypatch):
    upstream.reply(Reply(status=400, body={"error": {"message": "bad <b>request</b>"}}))
    answers = {
        "api": client.get("/team/list", headers=ADMIN),
        "health": client.get("/health/readiness"),
        "proxy error relayed from the upstream": client.post(
            "/v1/chat/completions", headers=bearer(key), json=CHAT),
        "proxy": client.post("/v1/chat/completions", headers=bearer(key), json=CHAT),
        "stream": client.post("/v1/chat/completions", headers=bearer(key),
                              json={**CHAT, "stream": True}),
        "models": client.get("/v1/models", headers=bearer(key)),
        "malformed JSON": client.post("/key/generate", headers=ADMIN, data="{<b>",
                                      content_type="application/json"),
        "no key": client.get("/team/list"),
        "no route": client.get("/<script>alert(1)</script>"),
        "wrong method": client.get("/key/generate", headers=ADMIN),
        "too large": client.post("/key/generate", headers=ADMIN, content_type="application/json",
                                 data=b"x" * (client.application.config["MAX_CONTENT_LENGTH"] + 1)),
    }
    monkeypatch.setattr(resolver, "resolve", lambda *args: 1 / 0)
    answers["unexpected"] = client.post("/v1/chat/completions", headers=bearer(key), json=CHAT)
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {"api": 200, "health": 200, "proxy error relayed from the upstream": 400,
                        "proxy": 200, "stream": 200, "models": 200, "malformed JSON": 400,
                        "no key": 401, "no route": 404, "wrong method": 405, "too large": 413,
                        "unexpected": 500}
    missing = [what for what, answer in answers.items()
               if answer.headers.get(NOSNIFF[0]) != NOSNIFF[1]]
    assert missing == []


def test_nosniff_over_a_real_socket(live, key):
    for response in (requests.post(live.url + "/v1/chat/completions", headers=bearer(key),
                                   json=CHAT, timeout=10),
                     requests.get(live.url + "/v2/nothing", timeout=10)):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers[NOSNIFF[0]] == NOSNIFF[1]
