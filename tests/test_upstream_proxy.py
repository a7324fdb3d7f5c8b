"""Egress through the operator's proxy (TEAMGATE_EGRESS_PROXY): every upstream connection is a
CONNECT tunnel through it, to an address of the upstream that passed the egress check (never the
name, which the proxy could resolve elsewhere), with TLS spoken to the upstream itself inside
the tunnel. The proxy's own address is the operator's choice; the ambient HTTP(S)_PROXY
variables never apply. The proxy here is a small real one on 127.0.0.2."""
import base64
import socket
import threading

import pytest

from tests.certificates import LOOPBACK, Authority, server_context, write_pem
from tests.conftest import Seed, bearer
from tests.raw_upstream import RawUpstream, answering, completion_answer
from webapp.errors import APIError
from webapp.upstream.transport import Client, Limits

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
PROXY_HOST = "127.0.0.2"  # outside TEAMGATE_UPSTREAM_ALLOW (127.0.0.1/32) on purpose


class ConnectProxy:
    """An HTTP proxy that only tunnels: CONNECT host:port, then bytes both ways. It records the
    targets it was asked for and every byte it relayed towards the upstream."""

    def __init__(self, refuse_with: int = 0, password: str = ""):
        self.refuse_with, self.password = refuse_with, password
        self.targets: list[str] = []
        self.heads: list[bytes] = []
        self.relayed = bytearray()
        self.listener = socket.create_server((PROXY_HOST, 0))
        self.url = f"http://{PROXY_HOST}:{self.listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket):
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                return client.close()
            head += data
        self.heads.append(head)
        target = head.split(b" ")[1].decode()
        self.targets.append(target)
        if self.refuse_with or (self.password and self._credentials(head) != self.password):
            status = self.refuse_with or 407
            client.sendall(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % status)
            return client.close()
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), 2)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return client.close()
        self._sockets.append(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _credentials(self, head: bytes) -> str:
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"proxy-authorization: basic "):
                return base64.b64decode(line.split(b" ")[2]).decode()
        return ""

    def _pipe(self, source: socket.socket, sink: socket.socket, towards_upstream: bool):
        try:
            while data := source.recv(65536):
                if towards_upstream:
                    self.relayed += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def proxies():
    made = []

    def make(**options) -> ConnectProxy:
        made.append(ConnectProxy(**options))
        return made[-1]
    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def upstream():
    server = RawUpstream(answering(lambda peer, request: completion_answer("via the tunnel")))
    yield server
    server.close()


def call_through(make_app, proxy_url: str, upstream_url: str, **config):
    client = make_app(EGRESS_PROXY=proxy_url, **config).test_client()
    _, key = Seed(client).team_with_model(upstream_url, max_retries=0)
    return client.post("/v1/chat/completions", headers=bearer(key), json=CALL)


def test_calls_go_through_the_proxy_to_the_checked_address(app, make_app, proxies, upstream):
    proxy = proxies()
    response = call_through(make_app, proxy.url, upstream.url)
    assert response.status_code == 200
    assert response.json["choices"][0]["message"]["content"] == "via the tunnel"
    port = upstream.url.rsplit(":", 1)[1]
    assert proxy.targets == [f"127.0.0.1:{port}"]
    assert bytes(proxy.relayed).startswith(b"POST /openai/deployments/gpt-4o/chat/completions")
    assert len(upstream.requests) == 1


def test_an_https_upstream_is_spoken_to_in_tls_inside_the_tunnel(app, make_app, proxies,
                                                                  tmp_path):
    ca = Authority("Internal CA")
    ca_file = write_pem(tmp_path, "ca", ca.cert)[0]
    tls = server_context(*write_pem(tmp_path, "server", *ca.sign(LOOPBACK)))
    upstream = RawUpstream(answering(lambda peer, request: completion_answer("secret answer")),
                           tls=tls)
    try:
        proxy = proxies()
        response = call_through(make_app, proxy.url, upstream.url, UPSTREAM_CA_FILE=ca_file)
        assert response.status_code == 200
        assert response.json["choices"][0]["message"]["content"] == "secret answer"
        assert len(proxy.targets) == 1 and upstream.requests
        relayed = bytes(proxy.relayed)
        assert relayed and b"POST" not in relayed and b"sk-provider" not in relayed
    finally:
        upstream.close()


def test_the_upstream_not_the_proxy_passes_the_egress_check(proxies, upstream):
    # the proxy is on 127.0.0.2, which the allow list does not open: the operator chose it
    proxy = proxies()
    client = Client(per_host=2, limits=Limits(65536, 1 << 20, 65536), proxy=proxy.url)
    try:
        with pytest.raises(APIError) as refused:
            client.post(upstream.url + "/", {}, b"{}", 2, 2, allow="")
        assert refused.value.status == 400 and "TEAMGATE_UPSTREAM_ALLOW" in str(
            refused.value.body())
        assert proxy.targets == []  # refused before the proxy was asked
        answer = client.post(upstream.url + "/", {}, b"{}", 2, 2, allow="127.0.0.1/32")
        assert answer.status == 200
        answer.close()
    finally:
        client.close()


def test_the_proxy_is_given_addresses_never_names(proxies, upstream):
    proxy = proxies()
    port = int(upstream.url.rsplit(":", 1)[1])
    client = Client(per_host=2, limits=Limits(65536, 1 << 20, 65536), proxy=proxy.url)
    try:
        answer = client.post(f"http://localhost:{port}/", {}, b"{}", 2, 2,
                             allow="127.0.0.1/32,::1/128")
        assert answer.status == 200
        answer.close()
    finally:
        client.close()
    assert "localhost" not in " ".join(proxy.targets)
    assert proxy.targets[-1] == f"127.0.0.1:{port}"


@pytest.mark.parametrize("status", [403, 502])
def test_a_proxy_that_refuses_the_tunnel_is_a_502_naming_it(app, make_app, proxies, upstream,
                                                           status):
    proxy = proxies(refuse_with=status)
    response = call_through(make_app, proxy.url, upstream.url)
    assert response.status_code == 502
    assert response.json["error"]["message"] == (
        f"The egress proxy (TEAMGATE_EGRESS_PROXY) refused the tunnel to the upstream "
        f"({status}).")
    assert upstream.requests == []


def test_a_proxy_that_cannot_be_reached_is_a_502_naming_it(app, make_app, upstream):
    closed = socket.create_server((PROXY_HOST, 0))
    url = f"http://{PROXY_HOST}:{closed.getsockname()[1]}"
    closed.close()
    response = call_through(make_app, url, upstream.url)
    assert response.status_code == 502
    assert "TEAMGATE_EGRESS_PROXY" in response.json["error"]["message"]


def test_proxy_credentials_go_to_the_proxy_only(app, make_app, proxies, upstream):
    proxy = proxies(password="ops:s3cret-proxy")
    response = call_through(make_app, proxy.url.replace("http://", "http://ops:s3cret-proxy@"),
                            upstream.url)
    assert response.status_code == 200
    assert b"Proxy-Authorization" in proxy.heads[0]
    assert all(b"s3cret" not in request.head for request in upstream.requests)
    assert "s3cret" not in response.get_data(as_text=True)


def test_the_ambient_proxy_variables_never_apply(client, seed, proxies, upstream, monkeypatch):
    proxy = proxies()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 200
    assert proxy.targets == []


@pytest.mark.parametrize("setting", ["https://proxy.internal:3128", "proxy.internal:3128",
                                     "http://proxy.internal"])
def test_an_egress_proxy_setting_that_is_not_http_host_port_is_refused_at_start(setting):
    with pytest.raises(ValueError, match="http://host:port"):
        Client(per_host=1, limits=Limits(1, 1, 1), proxy=setting)
