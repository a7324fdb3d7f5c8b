"""Calls that lead back through Teamgate: a model whose api_base is this Teamgate (by another
name) or another Teamgate, with a team key as its provider key, ends after one hop instead of
calling itself until something gives way. Hops are counted at a relay in front of the server
(a load balancer, as far as Teamgate can tell), which refuses everything past a cap so that a
loop in a broken build cannot run away."""
import http.client
import itertools
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.conftest import LiveServer, bearer
from tests.fake_upstream import Reply
from tests.serving import Serving
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import RequestLogEntry
from webapp.upstream.egress import check_api_base

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
DROPPED = ("host", "connection", "content-length", "transfer-encoding", "keep-alive")


class Relay:
    """Passes each request on to `target` and its answer back, counting the requests."""

    def __init__(self, target: str, cap: int = 20):
        self.target, self.cap = urlsplit(target), cap
        self._numbers = itertools.count(1)
        self.count = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.serving = Serving(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.serving.stop()

    def _handler_class(self):
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                relay.count = number = next(relay._numbers)
                if number > relay.cap:
                    return self._answer(400, [], b'{"error": {"message": "relay cap"}}')
                headers = {k: v for k, v in self.headers.items() if k.lower() not in DROPPED}
                upstream = http.client.HTTPConnection(relay.target.hostname, relay.target.port,
                                                      timeout=30)
                try:
                    upstream.request("POST", self.path, body, headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self._answer(answer.status, answer.getheaders(), data)

            def _answer(self, status, headers, data):
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in DROPPED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def relays():
    made = []

    def relay(target: str) -> Relay:
        made.append(Relay(target))
        return made[-1]

    yield relay
    for relay in made:
        relay.close()


def rows(app, team_id: str, *others) -> list[tuple]:
    """(model, status) of the team's calls, once every instance wrote its log."""
    for instance in (app, *others):
        instance.extensions["teamgate.request_log"].flush()
    with app.app_context():
        return [(r.public_model, r.status) for r in db.session.scalars(
            select(RequestLogEntry).where(RequestLogEntry.team_id == team_id)
            .order_by(RequestLogEntry.created_at))]


def chat(base: str, key: str, model: str, **headers):
    return requests.post(base + "/v1/chat/completions", json={"model": model, **CHAT},
                         headers={**bearer(key), **headers}, timeout=30)


def add_model(client, key, team_id, name, api_base, upstream_name, api_key=None):
    """An OpenAI-compatible team model; its provider key is the team's own Teamgate key unless
    another is given."""
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": name, "model_info": {"team_id": team_id},
        "litellm_params": {"model": f"openai/{upstream_name}", "api_base": api_base,
                           "api_key": api_key or key}})
    assert response.status_code == 200, response.json


def test_a_model_that_calls_its_own_teamgate_ends_after_one_hop(app, live, seed, client,
                                                                relays):
    team_id = seed.team()
    key = seed.key(team_id)
    relay = relays(live.url)  # this Teamgate under a name it cannot know as its own
    add_model(client, key, team_id, "loop", relay.url, "loop")

    response = chat(live.url, key, "loop")

    assert relay.count == 1  # one proxied call back into Teamgate, refused at once
    assert sorted(rows(app, team_id)) == [("loop", 502), ("loop", 508)]
    assert response.status_code == 502
    assert "Loop detected" in response.json()["error"]["message"]
    assert response.json()["error"]["type"] == "upstream_error"


def test_two_teamgates_that_call_each_other_end_after_one_hop(app, live, make_app, seed,
                                                              client, relays):
    other = LiveServer(make_app())
    try:
        team_id = seed.team()
        key = seed.key(team_id)
        to_b, to_a = relays(other.url), relays(live.url)
        # the two instances share the database: A serves `to-b`, which B serves as `to-a`
        add_model(client, key, team_id, "to-b", to_b.url, "to-a")
        add_model(client, key, team_id, "to-a", to_a.url, "to-b")

        response = chat(live.url, key, "to-b")

        # each call A sent to B came back to A once and stopped there
        assert 1 <= to_b.count == to_a.count <= 3  # A may retry B's 502 (max_retries 2)
        logged = rows(app, team_id, other.app)
        assert logged.count(("to-b", 508)) == to_a.count
        assert logged.count(("to-a", 502)) == to_b.count
        assert response.status_code == 502
        assert "Loop detected" in response.json()["error"]["message"]
    finally:
        other.stop()


def test_a_call_through_another_teamgate_is_not_retried_again(app, live, make_app, seed,
                                                              client, relays, upstream):
    """A -> B -> provider: B sends each call once, so A's retries are the only ones."""
    other = LiveServer(make_app())
    try:
        team_id = seed.team()
        key = seed.key(team_id)
        to_b = relays(other.url)
        add_model(client, key, team_id, "via-b", to_b.url, "at-b")
        add_model(client, key, team_id, "at-b", upstream.url, "gpt-4o",
                  api_key="sk-provider-team-a-secret-1234")
        upstream.default = Reply(status=503, body={"error": {"message": "overloaded"}})

        response = chat(live.url, key, "via-b")

        assert response.status_code == 502
        assert to_b.count == 3  # A: one call and its two retries
        assert len(upstream.received) == 3  # B: no retries of its own (it would make 9)
        ids = (app.config["TEAMGATE_INSTANCE_ID"], other.app.config["TEAMGATE_INSTANCE_ID"])
        assert ids[0] != ids[1]
        assert {r.headers["X-Teamgate-Hop"] for r in upstream.received} == {
            f"{ids[1]}, {ids[0]}"}
    finally:
        other.stop()


def test_every_upstream_call_names_this_teamgate_and_answers_say_who_answered(app, live, seed,
                                                                             upstream):
    _, key = seed.team_with_model(upstream.url)
    response = chat(live.url, key, "my-team-model")
    assert response.status_code == 200
    own = app.config["TEAMGATE_INSTANCE_ID"]
    assert upstream.received[-1].headers["X-Teamgate-Hop"] == own
    assert response.headers["x-teamgate-instance"] == own
    refused = chat(live.url, key, "no-such-model")
    assert refused.headers["x-teamgate-instance"] == own


def test_a_call_that_already_passed_this_teamgate_or_two_others_is_refused(app, live, seed,
                                                                          upstream):
    _, key = seed.team_with_model(upstream.url)
    own = app.config["TEAMGATE_INSTANCE_ID"]
    for hops in (own, f"other-gateway, {own}", "gateway-2, gateway-1"):
        response = chat(live.url, key, "my-team-model", **{"X-Teamgate-Hop": hops})
        assert response.status_code == 508, hops
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "508")
    assert upstream.received == []


def test_a_hop_header_that_lists_anything_but_instance_ids_is_refused(live, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    for hops in ("gateway 1", "x" * 65, "gw\u00e9"):
        response = chat(live.url, key, "my-team-model", **{"X-Teamgate-Hop": hops})
        assert response.status_code == 400, hops
        assert "X-Teamgate-Hop" in response.json()["error"]["message"]
    assert upstream.received == []


def test_a_call_from_one_other_teamgate_is_served_without_retries(app, live, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    upstream.default = Reply(status=503, body={"error": {"message": "overloaded"}})
    response = chat(live.url, key, "my-team-model", **{"X-Teamgate-Hop": "gateway-1"})
    assert response.status_code == 502
    assert len(upstream.received) == 1
    own = app.config["TEAMGATE_INSTANCE_ID"]
    assert upstream.received[0].headers["X-Teamgate-Hop"] == f"{own}, gateway-1"


def test_an_answer_from_this_teamgate_itself_is_refused(app, live, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    upstream.reply(Reply(headers={"x-teamgate-instance": app.config["TEAMGATE_INSTANCE_ID"]}))
    response = chat(live.url, key, "my-team-model")
    assert response.status_code == 508
    assert "Loop detected" in response.json()["error"]["message"]


@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost", "0.0.0.0"])
def test_an_api_base_at_this_teamgates_own_address_is_refused_when_saved(live, seed, client,
                                                                         spelling):
    team_id = seed.team()
    key = seed.key(team_id)
    port = live.url.rsplit(":", 1)[1]
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "self", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "openai/self", "api_key": key,
                           "api_base": f"http://{spelling}:{port}/v1"}})
    assert response.status_code == 400
    assert "this Teamgate itself" in response.json["error"]["message"]
    assert response.json["error"]["param"] == "litellm_params.api_base"


@pytest.mark.parametrize("api_base, listen, refused", [
    ("http://127.0.0.2:4000/v1", ("0.0.0.0", 4000), True),  # a wildcard bind serves loopback
    ("http://[::ffff:127.0.0.1]:4000/", ("127.0.0.1", 4000), True),
    ("http://[::1]:4000/", ("::", 4000), True),
    ("http://0.0.0.0:4000/", ("127.0.0.1", 4000), True),
    ("http://127.0.0.2:4000/v1", ("127.0.0.1", 4000), False),  # another loopback address
    ("http://127.0.0.1:4001/v1", ("0.0.0.0", 4000), False),  # another port
])
def test_every_spelling_of_a_listen_address_is_refused(api_base, listen, refused):
    try:
        check_api_base(api_base, setting="127.0.0.0/8,::1/128,0.0.0.0/32", listen=(listen,))
    except APIError as error:
        assert refused and "this Teamgate itself" in error.message
    else:
        assert not refused


def test_a_saved_model_at_this_teamgates_own_address_is_refused_at_call_time(app, live, seed,
                                                                             client):
    team_id = seed.team()
    key = seed.key(team_id)
    listening = app.config["TEAMGATE_LISTEN"]
    app.config["TEAMGATE_LISTEN"] = ()  # saved before Teamgate listened there
    add_model(client, key, team_id, "self", live.url, "self")
    app.config["TEAMGATE_LISTEN"] = listening

    response = chat(live.url, key, "self")

    assert response.status_code == 400
    assert "this Teamgate itself" in response.json()["error"]["message"]
    assert rows(app, team_id) == [("self", 400)]


def test_gunicorn_workers_refuse_their_own_bind_and_share_one_name(tmp_path, database_url,
                                                                   relays):
    """As `make run` serves it: the bind gunicorn.conf.py saw is refused as an api_base, and a
    loop that comes back to the other worker is still recognised as this Teamgate's own."""
    from tests.test_served import MASTER, served

    def post(path, key, body):
        # status and body only: a response kept alive keeps its connection, and gunicorn's
        # graceful stop waits for it
        response = requests.post(base + path, json=body, headers=bearer(key), timeout=10)
        return response.status_code, response.json()

    with served(tmp_path, database_url, workers=2) as (base, _):
        team_id = post("/team/new", MASTER, {"team_alias": "loops"})[1]["team_id"]
        key = post("/key/generate", MASTER, {"team_id": team_id})[1]["key"]
        relay = relays(base)
        registered = [post("/model/new", key, {
            "model_name": "loop", "model_info": {"team_id": team_id},
            "litellm_params": {"model": "openai/loop", "api_base": api_base, "api_key": key}})
            for api_base in (base, relay.url)]
        answers = [post("/v1/chat/completions", key, {"model": "loop", **CHAT})
                   for _ in range(6)]

    assert registered[0][0] == 400
    assert "this Teamgate itself" in registered[0][1]["error"]["message"]
    assert registered[1][0] == 200
    assert relay.count == 6  # every loop refused on its first way back, whichever worker
    assert {status for status, _ in answers} == {502}
    assert all("Loop detected" in body["error"]["message"] for _, body in answers)
