"""A pooled connection never carries one call's answer to another: informational answers (100,
103) are skipped, a connection goes back to the pool only when its answer was read exactly to
its end, and two credentials (two teams) never share a connection to the same host."""
import json
import threading
import time


from tests.conftest import bearer
from tests.raw_upstream import answering, completion_answer
from webapp.upstream.transport import client as pool

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
KEY_A, KEY_B = "sk-provider-team-a-secret-1234", "sk-provider-team-b-secret-5678"



def tagged(request, upstream) -> str:
    """Which request an answer belongs to: its number and the key it came with (last 4)."""
    return f"answer {len(upstream.requests)} for {request.headers.get('api-key', '')[-4:]}"


def two_teams(seed, url: str) -> tuple[str, str]:
    _, key_a = seed.team_with_model(url, api_key=KEY_A, max_retries=0)
    team_b = seed.team("Team B")
    key_b = seed.key(team_b)
    seed.model(key_b, team_b, url, api_key=KEY_B, max_retries=0)
    return key_a, key_b


def in_two_writes(interim: bytes, upstream_of):
    """A script that sends `interim` first and the tagged answer a moment later, as a server
    that says 100 Continue before it computes the answer does."""
    def serve(peer):
        while (request := peer.request()) is not None:
            peer.send(interim)
            time.sleep(0.02)
            peer.send(completion_answer(tagged(request, upstream_of())))
    return serve


def content(response) -> str:
    assert response.status_code == 200, response.data
    return json.loads(response.data)["choices"][0]["message"]["content"]


def call(client, key):
    return client.post("/v1/chat/completions", headers=bearer(key), json=CALL)


def test_after_a_100_continue_each_team_gets_its_own_answer(client, seed, raw):
    upstream = raw(in_two_writes(b"HTTP/1.1 100 Continue\r\n\r\n", lambda: upstream))
    key_a, key_b = two_teams(seed, upstream.url)
    assert content(call(client, key_a)) == "answer 1 for 1234"
    assert content(call(client, key_b)) == "answer 2 for 5678"
    assert content(call(client, key_a)) == "answer 3 for 1234"


def test_several_informational_answers_are_skipped_with_their_headers(client, seed, raw):
    interim = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
               b"Set-Cookie: hint=1\r\n\r\n")
    upstream = raw(in_two_writes(interim, lambda: upstream))
    _, key = seed.team_with_model(upstream.url, api_key=KEY_A, max_retries=0)
    for number in (1, 2):
        assert content(call(client, key)) == f"answer {number} for 1234"


def test_switching_protocols_is_a_502(client, seed, raw):
    upstream = raw(answering(lambda peer, request: b"HTTP/1.1 101 Switching Protocols\r\n"
                             b"Upgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = call(client, key)
    assert response.status_code == 502
    assert response.json["error"]["type"] == "upstream_error"


def test_two_teams_on_one_host_never_share_a_connection(client, seed, raw):
    upstream = raw(answering(lambda peer, request: completion_answer(
        tagged(request, upstream))))
    key_a, key_b = two_teams(seed, upstream.url)
    for key in (key_a, key_b, key_a, key_b, key_a):
        assert call(client, key).status_code == 200
    keys_per_connection = {}
    for request in upstream.requests:
        keys_per_connection.setdefault(request.connection, set()).add(request.headers["api-key"])
    assert sorted(keys_per_connection.values(), key=sorted) == [{KEY_A}, {KEY_B}]


def test_an_answer_sent_after_the_answer_never_reaches_the_next_call(client, seed, raw):
    forged_sent = threading.Event()

    def serve(peer):
        request = peer.request()
        if request is None:
            return
        peer.send(completion_answer(tagged(request, upstream)))
        time.sleep(0.05)  # after Teamgate has read the genuine answer
        peer.send(completion_answer("forged"))
        forged_sent.set()
        while (request := peer.request()) is not None:
            peer.send(completion_answer(tagged(request, upstream)))
    upstream = raw(serve)
    _, key = seed.team_with_model(upstream.url, api_key=KEY_A, max_retries=0)
    assert content(call(client, key)) == "answer 1 for 1234"
    assert forged_sent.wait(2)
    time.sleep(0.05)
    assert content(call(client, key)) == "answer 2 for 1234"


def test_a_connection_with_bytes_beyond_its_answer_is_not_reused(client, seed, raw):
    upstream = raw(answering(lambda peer, request: completion_answer(
        tagged(request, upstream)) + completion_answer("smuggled")))
    _, key = seed.team_with_model(upstream.url, api_key=KEY_A, max_retries=0)
    assert content(call(client, key)) == "answer 1 for 1234"
    assert content(call(client, key)) == "answer 2 for 1234"
    assert upstream.connections == 2


def test_a_fully_read_answer_keeps_its_connection(client, seed, raw):
    upstream = raw(in_two_writes(b"HTTP/1.1 100 Continue\r\n\r\n", lambda: upstream))
    _, key = seed.team_with_model(upstream.url, api_key=KEY_A, max_retries=0)
    for number in (1, 2, 3):
        assert content(call(client, key)) == f"answer {number} for 1234"
    assert upstream.connections == 1


def test_connections_idle_too_long_are_closed_though_no_call_takes_them(
        client, seed, raw, monkeypatch):
    monkeypatch.setattr(pool, "IDLE_SECONDS", 0.05)
    upstream = raw(answering(lambda peer, request: completion_answer(tagged(request, upstream))))
    key_a, key_b = two_teams(seed, upstream.url)
    assert call(client, key_a).status_code == 200
    assert call(client, key_b).status_code == 200
    time.sleep(0.1)
    assert content(call(client, key_a)) == "answer 3 for 1234"  # on a new connection
    deadline = time.monotonic() + 2
    while not (upstream.peers[0].ended and upstream.peers[1].ended) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [peer.ended for peer in upstream.peers] == [True, True, False]
