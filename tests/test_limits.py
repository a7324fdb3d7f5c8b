"""Gateway limits: rpm_limit and max_parallel_requests answer 429 with Retry-After."""
import threading
import time

import requests

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply, chunk


def chat(client, key):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})


def test_key_rpm_limit(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id, rpm_limit=2)
    other = seed.key(team_id)
    seed.model(other, team_id, upstream.url)
    assert [chat(client, key).status_code for _ in range(2)] == [200, 200]
    refused = chat(client, key)
    assert refused.status_code == 429
    assert refused.json["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(upstream.received) == 2
    assert chat(client, other).status_code == 200  # the limit is the key's, not the team's


def test_team_parallel_limit_counts_open_streams(live, client, seed, upstream):
    team_id = seed.team(max_parallel_requests=1)
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    upstream.reply(Reply(chunks=[chunk("slow"), b"[DONE]"], chunk_delay=0.6))
    streamed = []

    def stream():
        response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
            "model": "my-team-model", "stream": True,
            "messages": [{"role": "user", "content": "hi"}]})
        streamed.append(response.text)

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 3
    while not upstream.received and time.monotonic() < deadline:
        time.sleep(0.02)
    busy = chat(client, key)
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
    thread.join()
    assert "data: [DONE]" in streamed[0]
    assert chat(client, key).status_code == 200


def test_limits_follow_a_team_update(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    assert chat(client, key).status_code == 200
    client.post("/team/update", headers=ADMIN, json={"team_id": team_id, "rpm_limit": 1})
    assert [chat(client, key).status_code for _ in range(2)] == [200, 429]
