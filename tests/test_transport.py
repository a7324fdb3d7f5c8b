"""The upstream client on the wire, against a scripted HTTP server on 127.0.0.1: connections are
kept and reused, an upstream that dropped an idle connection still gets the call exactly once,
answers that end when the connection closes are read whole, and a header holding a control
character (a line break, \x0b, \x85, ...) or anything but printable ASCII is never written."""
import json
import socket
import threading

import pytest

from tests.conftest import bearer
from tests.fake_upstream import completion

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
BODY = json.dumps(completion()).encode()


class ScriptedUpstream:
    """Answers every request with fixed bytes; counts connections and requests."""

    def __init__(self, answer: bytes, close_after_answer: bool):
        self.answer, self.close_after_answer = answer, close_after_answer
        self.connections, self.requests = 0, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections),
                             daemon=True).start()

    def _serve(self, conn: socket.socket, number: int):
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.requests.append((number, head, buffer[:length]))
                buffer = buffer[length:]
                conn.sendall(self.answer)
                if self.close_after_answer:
                    return

    def close(self):
        self.listener.close()


@pytest.fixture
def scripted():
    servers = []

    def make(answer: bytes, close_after_answer: bool = False) -> ScriptedUpstream:
        servers.append(ScriptedUpstream(answer, close_after_answer))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


def keep_alive_answer() -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(BODY)) + BODY


def test_calls_share_one_kept_alive_connection(client, seed, scripted):
    upstream = scripted(keep_alive_answer())
    _, key = seed.team_with_model(upstream.url)
    for _ in range(5):
        response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
        assert response.status_code == 200 and response.data == BODY
    assert len(upstream.requests) == 5
    assert upstream.connections == 1


def test_an_idle_connection_the_upstream_closed_is_replaced_without_a_second_request(
        client, seed, scripted):
    # keep-alive announced, then the connection closed after each answer (as an upstream's idle
    # timeout does): every call must reach the upstream exactly once, on a fresh connection
    upstream = scripted(keep_alive_answer(), close_after_answer=True)
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    for _ in range(3):
        response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
        assert response.status_code == 200
    assert len(upstream.requests) == 3
    assert upstream.connections == 3


def test_an_answer_that_ends_with_the_connection_is_read_whole(client, seed, scripted):
    upstream = scripted(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + BODY,
                        close_after_answer=True)
    _, key = seed.team_with_model(upstream.url)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 200
    assert response.data == BODY


def test_a_garbled_status_line_is_a_502(client, seed, scripted):
    upstream = scripted(b"SSH-2.0-OpenSSH_9.6\r\n", close_after_answer=True)
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    assert response.json["error"]["type"] == "upstream_error"


def test_a_key_with_a_line_break_is_never_written(client, seed, scripted):
    upstream = scripted(keep_alive_answer())
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, api_key="sk-team\r\nX-Injected: yes")
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    assert "line break" in response.json["error"]["message"]
    assert upstream.requests == []


def openai_model(client, key: str, team_id: str, url: str, **params):
    """A plain OpenAI deployment (no api_version, so organization is sent)."""
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "my-team-model", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "openai/gpt-4o", "api_base": url,
                           "api_key": "sk-provider-team-a-secret-1234", **params}})
    assert response.status_code == 200, response.json


def assert_refused_unsent(response, upstream, value: str):
    assert response.status_code == 502
    message = response.json["error"]["message"]
    assert "control character" in message or "cannot carry" in message
    assert value not in message and "X-Injected" not in message
    assert upstream.requests == []


@pytest.mark.parametrize("bad", ["\x0b", "\x0c", "\x85", "\x7f", "\x1b", "\u2028"],
                         ids=["vt", "ff", "nel", "del", "esc", "line-separator"])
def test_a_key_with_a_control_character_is_never_sent(client, seed, scripted, bad):
    upstream = scripted(keep_alive_answer())
    team_id = seed.team()
    key = seed.key(team_id)
    value = f"sk-team{bad}X-Injected: yes"
    seed.model(key, team_id, upstream.url, api_key=value)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert_refused_unsent(response, upstream, value)


@pytest.mark.parametrize("bad", ["\x0b", "\x85"], ids=["vt", "nel"])
def test_an_organization_with_a_control_character_is_never_sent(client, seed, scripted, bad):
    upstream = scripted(keep_alive_answer())
    team_id = seed.team()
    key = seed.key(team_id)
    value = f"org-team{bad}X-Injected: yes"
    openai_model(client, key, team_id, upstream.url, organization=value)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert_refused_unsent(response, upstream, value)
    assert "OpenAI-Organization" in response.json["error"]["message"]


def test_a_tab_in_an_organization_is_legal_http_and_sent(client, seed, scripted):
    upstream = scripted(keep_alive_answer())
    team_id = seed.team()
    key = seed.key(team_id)
    openai_model(client, key, team_id, upstream.url, organization="org-a\tb")
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 200
    assert b"OpenAI-Organization: org-a\tb" in upstream.requests[0][1]


def test_a_header_name_that_is_not_an_http_token_is_refused(app):
    from webapp.upstream.transport import InvalidRequest
    http = app.extensions["teamgate.http"]
    for name in ("X Bad", "X-Bad:", "X-B\u00e9", "X-\x0bBad", ""):
        with pytest.raises(InvalidRequest):
            http.post("http://127.0.0.1:9/", {name: "v"}, b"", 1, 1, "127.0.0.1/32")
