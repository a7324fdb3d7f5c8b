"""The upstream client on the wire, against a scripted HTTP server on 127.0.0.1: connections are
kept and reused, an upstream that dropped an idle connection still gets the call exactly once,
answers that end when the connection closes are read whole, and a header with a line break is
never written."""
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
