"""SSRF through api_base: refused when saved, before each call and when a connection opens, unless
TEAMGATE_UPSTREAM_ALLOW covers the address. A loopback canary server must count zero hits."""
import socket

import pytest

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import FakeUpstream, Reply
from webapp.errors import APIError
from webapp.upstream.egress import check_api_base

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
PUBLIC_IP = "93.184.216.34"

REFUSED = [
    "http://127.0.0.1:8080/v1", "http://127.1/", "http://0177.0.0.1/", "http://2130706433/",
    "http://0x7f000001/", "http://0x7f.0.0.1/", "http://localhost:11434/v1",
    "http://LOCALHOST./", "http://0.0.0.0:80/", "http://0/", "http://10.0.0.8/",
    "http://172.16.5.4/", "http://192.168.1.1/", "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[fd00::1]/",
    "http://[::1]:8000/", "http://[::]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/", "http://[::ffff:169.254.169.254]/", "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://224.0.0.1/", "http://240.0.0.1/", "http://255.255.255.255/",
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://example.com/",
    "http://user:pass@example.com/", "http:///v1", "http://no-such-host.invalid/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_reserved_and_odd_spellings_are_refused(url):
    with pytest.raises(APIError) as refused:
        check_api_base(url, setting="")
    assert refused.value.status == 400


def test_a_public_address_is_accepted_and_the_allow_list_opens_only_what_it_names():
    check_api_base(f"https://{PUBLIC_IP}/v1", setting="")
    check_api_base("http://127.0.0.1:8000/v1", setting="127.0.0.1/32")
    check_api_base("http://[::ffff:127.0.0.1]:8000/v1", setting="127.0.0.1/32")
    check_api_base("http://gpu-box.internal:8000/v1", setting="gpu-box.internal")
    with pytest.raises(APIError, match="TEAMGATE_UPSTREAM_ALLOW"):
        check_api_base("http://169.254.169.254/", setting="127.0.0.1/32,10.0.0.0/8")


@pytest.fixture
def fake_dns(monkeypatch):
    """Names under .test resolve to whatever the test says; everything else as usual."""
    table = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".test"):
            return real(table[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def canary():
    server = FakeUpstream("canary")
    yield server
    server.close()


def model_body(team_id, api_base, name="m", **params):
    return {"model_name": name, "model_info": {"team_id": team_id},
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-provider-team-a-secret-1234",
                               "api_base": api_base, **params}}


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/v1", "http://localhost:{port}/v1",
                                 "http://2130706433:{port}/v1", "http://[::ffff:127.0.0.1]:{port}/",
                                 "http://169.254.169.254/"])
def test_saving_a_private_api_base_is_refused(app, client, seed, canary, url):
    team_id = seed.team()
    key = seed.key(team_id)
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""
    url = url.format(port=canary.server.server_address[1])
    created = client.post("/model/new", headers=bearer(key), json=model_body(team_id, url))
    assert created.status_code == 400
    assert "TEAMGATE_UPSTREAM_ALLOW" in created.json["error"]["message"] or \
        "resolve" in created.json["error"]["message"]
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = "127.0.0.1/32"
    saved = seed.model(key, team_id, canary.url, name="ok")
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""
    updated = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": saved["model_id"]},
        "litellm_params": {"api_base": url, "api_key": "sk-provider-team-a-secret-1234"}})
    assert updated.status_code == 400
    assert canary.received == []


def test_changing_api_base_without_the_key_is_refused(client, seed, upstream, upstream_b):
    team_id = seed.team()
    key = seed.key(team_id)
    saved = seed.model(key, team_id, upstream.url)
    moved = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": saved["model_id"]}, "litellm_params": {"api_base": upstream_b.url}})
    assert moved.status_code == 400 and moved.json["error"]["param"] == "litellm_params.api_key"
    info = client.get("/model/info", headers=bearer(key)).json["data"][0]
    assert info["litellm_params"]["api_base"] == upstream.url


def test_allow_list_narrowed_after_save_refuses_the_call(app, client, seed, canary):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, canary.url, name="self-hosted")
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""  # the operator removed the exception
    response = client.post("/v1/chat/completions", headers=bearer(key),
                           json={"model": "self-hosted", **CHAT})
    assert response.status_code == 400
    assert "TEAMGATE_UPSTREAM_ALLOW" in response.json["error"]["message"]
    assert canary.received == []


def test_dns_that_changes_after_save_is_refused_at_call_time(app, client, seed, canary,
                                                             fake_dns):
    team_id = seed.team()
    key = seed.key(team_id)
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""
    port = canary.server.server_address[1]
    fake_dns["llm.example.test"] = PUBLIC_IP
    saved = client.post("/model/new", headers=bearer(key),
                        json=model_body(team_id, f"http://llm.example.test:{port}/v1", "rebound"))
    assert saved.status_code == 200
    fake_dns["llm.example.test"] = "127.0.0.1"
    response = client.post("/v1/chat/completions", headers=bearer(key),
                           json={"model": "rebound", **CHAT})
    assert response.status_code == 400
    assert canary.received == []


def test_dns_rebinding_between_check_and_connect_gains_nothing(app, client, seed, canary,
                                                               fake_dns, monkeypatch):
    """The pre-call check sees a public address; the connection must not go to loopback."""
    team_id = seed.team()
    key = seed.key(team_id)
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""
    port = canary.server.server_address[1]
    fake_dns["rebind.example.test"] = PUBLIC_IP
    assert client.post("/model/new", headers=bearer(key), json=model_body(
        team_id, f"http://rebind.example.test:{port}/v1", "rebind")).status_code == 200
    # warm the pre-call check's cache with the public answer, then rebind the name
    from webapp.services.cache import routing_cache
    with app.test_request_context():
        routing_cache().get(("egress", f"http://rebind.example.test:{port}/v1"), lambda: None)
    fake_dns["rebind.example.test"] = "127.0.0.1"
    response = client.post("/v1/chat/completions", headers=bearer(key),
                           json={"model": "rebind", **CHAT})
    assert response.status_code in (400, 502)
    assert canary.received == []


def test_an_upstream_redirect_to_a_private_address_is_not_followed(client, seed, upstream, canary):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, name="redirecting")
    for status in (301, 302, 307, 308):
        upstream.reply(Reply(status=status, body=b"", headers={
            "Location": canary.url + "/latest/meta-data/"}))
        response = client.post("/v1/chat/completions", headers=bearer(key),
                               json={"model": "redirecting", **CHAT})
        assert response.status_code == 502
        assert response.json["error"]["type"] == "upstream_error"
        assert "Location" not in response.headers
    assert canary.received == []


def test_call_bodies_cannot_choose_the_destination(client, seed, upstream, canary):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, name="fixed")
    for field in ("api_base", "base_url", "api_key", "extra_headers"):
        response = client.post("/v1/chat/completions", headers=bearer(key),
                               json={"model": "fixed", field: canary.url, **CHAT})
        assert response.status_code == 400 and field in response.json["error"]["message"]
    assert canary.received == [] and upstream.received == []


def test_admin_global_models_get_the_same_checks(app, client, canary):
    app.config["TEAMGATE_UPSTREAM_ALLOW"] = ""
    body = model_body(None, canary.url)
    del body["model_info"]
    response = client.post("/model/new", headers=ADMIN, json=body)
    assert response.status_code == 400
    assert canary.received == []
