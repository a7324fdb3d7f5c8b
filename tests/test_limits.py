"""Gateway limits: rpm_limit, tpm_limit and max_parallel_requests answer 429 with Retry-After."""
import threading
import time
import uuid

import pytest
import requests

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply, chunk
from webapp.auth.principal import Principal
from webapp.errors import APIError
from webapp.services import limit_stores, limits
from webapp.services.limit_stores import trips


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


def tpm_call(max_tokens: int) -> dict:
    # "hi" is reserved as 4 tokens (one message) plus the completion tokens allowed
    return {"model": "my-team-model", "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "hi"}]}


def test_key_tpm_limit_reserves_each_calls_tokens_while_it_runs(live, seed, upstream):
    """tpm_limit 1000, calls reserving 304 tokens each and held 0.5 s by the upstream: of 6 sent
    at once exactly 3 reach it; the others are 429s that say which limit."""
    team_id = seed.team()
    key = seed.key(team_id, tpm_limit=1000)
    seed.model(key, team_id, upstream.url)
    upstream.default = Reply(delay=0.5)
    results = []

    def call():
        results.append(requests.post(live.url + "/v1/chat/completions", headers=bearer(key),
                                     json=tpm_call(300), timeout=10))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200] * 3 + [429] * 3
    refused = next(r for r in results if r.status_code == 429).json()["error"]
    assert refused["message"] == "Rate limit of this key reached (1000 tokens per minute)."
    assert len(upstream.received) == 3


def test_a_call_larger_than_the_tpm_limit_never_reaches_the_upstream(client, seed, upstream):
    team_id = seed.team(tpm_limit=1000)
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    refused = client.post("/v1/chat/completions", headers=bearer(key), json=tpm_call(2000))
    assert refused.status_code == 429
    assert refused.json["error"]["message"] == ("This call would use about 2004 tokens, more "
                                                "than the limit of this team (1000 tokens per "
                                                "minute).")
    assert upstream.received == []
    assert client.post("/v1/chat/completions", headers=bearer(key),
                       json=tpm_call(500)).status_code == 200


def test_settled_calls_count_their_real_tokens_instead_of_the_reservation(app):
    check_settling(app)


def check_settling(app):
    """settle(prompt, completion) replaces the 304 reserved with what the upstream reported;
    release() without counts leaves the reservation counted."""
    principal = Principal(kind="team_key", actor="k", key_token=uuid.uuid4().hex,
                          key_limits={"tpm_limit": 1000})
    with app.test_request_context():
        tickets = [limits.admit(principal, tpm_call(300)) for _ in range(3)]  # 912 reserved
        with pytest.raises(APIError) as refused:
            limits.admit(principal, tpm_call(300))
        assert refused.value.status == 429
        for ticket in tickets:
            ticket.settle(12, 5)  # 51 counted
        tickets = [limits.admit(principal, tpm_call(300)) for _ in range(3)]  # 51 + 912
        tickets[0].release()  # the call's counts unknown: its 304 stay
        with pytest.raises(APIError):
            limits.admit(principal, tpm_call(300))
        tickets[1].settle(0, 0)  # 963 - 304 = 659 counted: one more fits
        limits.admit(principal, tpm_call(300)).settle(1, 1)  # 661
        tickets[1].settle(0, 0)  # a second settle changes nothing
        limits.admit(principal, tpm_call(300))  # 965
        with pytest.raises(APIError):
            limits.admit(principal, tpm_call(300))


def test_the_estimate_counts_text_and_allowed_completion_tokens():
    assert limits.estimate_tokens({"messages": [
        {"role": "user", "content": "x" * 400},
        {"role": "user", "content": [{"type": "text", "text": "y" * 40},
                                     {"type": "image_url", "image_url": {"url": "data:..."}}]}],
        "max_completion_tokens": 50}) == 100 + 10 + 2 * 4 + 50
    assert limits.estimate_tokens({"input": ["a" * 8, "b" * 8]}) == 4
    assert limits.estimate_tokens({"input": [1, 2, 3], "max_tokens": "many"}) == 3


def test_a_call_killed_before_its_trip_hands_the_trip_on(tmp_path, monkeypatch):
    """A call that leads the next trip and is killed while it lets the others join (a worker's
    shutdown) leaves the trip to the next caller: nobody waits for ever."""
    store = limit_stores.SQLiteStore(str(tmp_path / "limits.db"), 30)
    checks = [limit_stores.Check("key:killed", None, 5, None)]
    answers, real_sleep = [], time.sleep

    class Killed(BaseException):
        pass

    def follower():
        answers.append(store.admit(checks, "follower")[1])

    def sleep(seconds):
        if threading.current_thread().name == "leader" and not answers:
            other = threading.Thread(target=follower, daemon=True)
            other.start()
            while len(store._waiting) < 2:  # the follower waits behind the leader
                real_sleep(0.001)
            raise Killed()
        real_sleep(seconds)

    monkeypatch.setattr(trips.time, "sleep", sleep)
    outcome = []

    def leader():
        try:
            store.admit(checks, "leader")
        except Killed:
            outcome.append("killed")

    first = threading.Thread(target=leader, name="leader")
    first.start()
    first.join(5)
    deadline = time.monotonic() + 5
    while not answers and time.monotonic() < deadline:
        real_sleep(0.01)
    assert outcome == ["killed"] and answers == [None]  # the follower's trip went
    assert store.admit(checks, "later")[1] is None  # and the store still answers
