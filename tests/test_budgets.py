"""Budgets: max_budget of a key, a team and a team member stops calls with LiteLLM's answer once
spent, budget_duration starts a new period on schedule, soft_budget alerts once (audit row and
webhook), and the check costs a dictionary look-up on most calls."""
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import event, select, update

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply
from tests.serving import Serving
from webapp.extensions import db
from webapp.models import AuditEntry, RequestLogEntry, SpendCounter
from webapp.models.base import utcnow
from webapp.services import budgets, spend

IN, OUT = 0.001, 0.002
COST = 12 * IN + 5 * OUT  # 0.022 per call: the fake upstream answers 12 + 5 tokens


@pytest.fixture
def app(make_app):
    return make_app(BUDGET_CHECK_INTERVAL=0.0)  # every check reads the table


def chat(client, key):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})


def call_and_flush(app, client, key, times=1):
    statuses = []
    for _ in range(times):
        statuses.append(chat(client, key).status_code)
        with app.app_context():
            app.extensions["teamgate.request_log"].flush()
    return statuses


def priced_team(seed, upstream, **team_fields):
    team_id = seed.team(**team_fields)
    admin_key = seed.key(team_id)
    seed.model(admin_key, team_id, upstream.url, input_cost_per_token=IN,
               output_cost_per_token=OUT)
    return team_id


def test_a_key_budget_stops_calls_once_spent_with_litellms_answer(app, client, seed, upstream):
    team_id = priced_team(seed, upstream)
    key = seed.key(team_id, max_budget=0.05)
    assert call_and_flush(app, client, key, 3) == [200, 200, 200]  # 0.044 < 0.05 before the 3rd
    sent = len(upstream.received)
    refused = chat(client, key)
    assert refused.status_code == 400
    error = refused.json["error"]
    assert error["type"] == "budget_exceeded"
    assert error["message"] == (f"Budget has been exceeded! Current cost: {3 * COST}, "
                                f"Max budget: 0.05")
    assert len(upstream.received) == sent  # the upstream never saw it
    with app.app_context():
        app.extensions["teamgate.request_log"].flush()
        last = db.session.scalars(select(RequestLogEntry).where(
            RequestLogEntry.team_id == team_id).order_by(RequestLogEntry.id.desc())).first()
    assert (last.status, last.error_type, last.cost) == (400, "budget_exceeded", 0.0)
    assert chat(client, seed.key(team_id)).status_code == 200  # the budget is the key's


def test_a_refusal_for_calls_in_flight_says_so(app, client, seed, upstream):
    """The spend is 0 but a call in flight holds 0.014 (4 + 5 tokens) of a 0.01 budget: the next
    call is refused, and its message shows the spend and the hold apart."""
    team_id = priced_team(seed, upstream)
    key = seed.key(team_id, max_budget=0.01)
    upstream.default = Reply(delay=1.0)
    body = {"model": "my-team-model", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}
    first = threading.Thread(target=lambda: app.test_client().post(
        "/v1/chat/completions", headers=bearer(key), json=body))
    first.start()
    deadline = time.monotonic() + 5
    while not upstream.received and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = chat(client, key)
    first.join()
    assert refused.status_code == 400
    assert refused.json["error"]["message"] == (
        "Budget has been exceeded! Current cost: 0.0, Max budget: 0.01 "
        "(0.014 more is held for calls not yet settled)")


def test_a_team_budget_counts_every_key_of_the_team(app, client, seed, upstream):
    team_id = priced_team(seed, upstream, max_budget=0.03)
    first, second = seed.key(team_id), seed.key(team_id)
    assert call_and_flush(app, client, first, 2) == [200, 200]
    refused = chat(client, second)
    assert refused.status_code == 400 and refused.json["error"]["type"] == "budget_exceeded"


def test_a_budget_duration_starts_a_new_period_on_schedule(app, client, seed, upstream):
    team_id = priced_team(seed, upstream)
    key = seed.key(team_id, max_budget=0.02, budget_duration="30d")
    assert call_and_flush(app, client, key, 2) == [200, 400]
    info = client.get("/key/info", headers=bearer(key)).json
    reset_at = info["info"]["budget_reset_at"]
    assert reset_at is not None and info["info"]["spend"] == pytest.approx(COST)
    with app.app_context():  # the 30 days have passed
        db.session.execute(update(SpendCounter).where(SpendCounter.subject_id == info["key"])
                           .values(budget_reset_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert call_and_flush(app, client, key, 2) == [200, 400]
    after = client.get("/key/info", headers=bearer(key)).json["info"]
    assert after["spend"] == pytest.approx(COST) and after["budget_reset_at"] > reset_at


def test_a_members_budget_in_the_team(app, client, seed, upstream):
    team_id = priced_team(seed, upstream)
    key = seed.key(team_id, user_id="member-1")
    other = seed.key(team_id, user_id="member-2")
    with app.app_context():
        spend.set_budget("member", spend.member_id(team_id, "member-1"), 0.01)
        db.session.commit()
    assert call_and_flush(app, client, key, 2) == [200, 400]
    assert call_and_flush(app, client, other) == [200]
    members = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json[
        "team_memberships"]
    assert members == [{"user_id": "member-1", "team_id": team_id, "spend": pytest.approx(COST),
                        "litellm_budget_table": {"max_budget": 0.01, "budget_duration": None}},
                       {"user_id": "member-2", "team_id": team_id, "spend": pytest.approx(COST),
                        "litellm_budget_table": None}]


def test_a_team_member_budget_is_each_members_default(app, client, seed, upstream):
    """LiteLLM's team_member_budget: every member of the team without a max_budget_in_team of
    their own gets it, each on their own spend; null takes it away again."""
    made = client.post("/team/new", headers=ADMIN, json={
        "team_alias": "members", "team_member_budget": 0.03})
    assert made.status_code == 200, made.json
    assert "x-teamgate-ignored-fields" not in made.headers
    team_id = made.json["team_id"]
    seed.model(seed.key(team_id), team_id, upstream.url, input_cost_per_token=IN,
               output_cost_per_token=OUT)
    first, second, own = (seed.key(team_id, user_id=f"member-{n}") for n in (1, 2, 3))
    with app.app_context():
        spend.set_budget("member", spend.member_id(team_id, "member-3"), 0.05)
        db.session.commit()
    assert call_and_flush(app, client, first, 3) == [200, 200, 400]  # 0.044 >= 0.03
    assert chat(client, first).json["error"]["message"] == (
        f"Budget has been exceeded! Current cost: {2 * COST}, Max budget: 0.03")
    assert call_and_flush(app, client, second) == [200]  # a budget each, not one for all
    assert call_and_flush(app, client, own, 4) == [200, 200, 200, 400]  # its own 0.05
    info = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json["team_info"]
    assert info["team_member_budget"] == 0.03
    assert client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "team_member_budget": None}).status_code == 200
    assert call_and_flush(app, client, first) == [200]


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve_hook(host):
    Hook.received = []
    return Serving(ThreadingHTTPServer((host, 0), Hook))


@pytest.fixture
def webhook():
    server = serve_hook("127.0.0.1")
    yield f"http://127.0.0.1:{server.server.server_address[1]}/alert"
    server.stop()


@pytest.fixture
def private_webhook():
    """A webhook on an address TEAMGATE_UPSTREAM_ALLOW (127.0.0.1/32 in tests) does not open."""
    server = serve_hook("127.0.0.2")
    yield f"http://127.0.0.2:{server.server.server_address[1]}/alert"
    server.stop()


def test_a_soft_budget_alerts_once_with_an_audit_row_and_the_webhook(make_app, seed, upstream,
                                                                     webhook):
    app = make_app(BUDGET_CHECK_INTERVAL=0.0, TEAMGATE_ALERT_WEBHOOK=webhook)
    client = app.test_client()
    seed.client = client
    team_id = priced_team(seed, upstream, soft_budget=0.03)
    key = seed.key(team_id)
    assert call_and_flush(app, client, key, 4) == [200] * 4  # soft: nothing is refused
    with app.app_context():
        alerts = list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "budget.soft_exceeded", AuditEntry.team_id == team_id)))
    assert len(alerts) == 1 and alerts[0].after["soft_budget"] == 0.03
    deadline = time.monotonic() + 3
    while not Hook.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Hook.received == [alerts[0].after]
    assert client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json[
        "team_info"]["spend"] == pytest.approx(4 * COST)


def test_the_alert_webhook_obeys_the_upstream_rules(make_app, seed, upstream, private_webhook,
                                                    caplog):
    app = make_app(BUDGET_CHECK_INTERVAL=0.0, TEAMGATE_ALERT_WEBHOOK=private_webhook)
    seed.client = client = app.test_client()
    team_id = priced_team(seed, upstream, soft_budget=0.01)
    key = seed.key(team_id)
    assert call_and_flush(app, client, key, 2) == [200, 200]
    deadline = time.monotonic() + 3
    while "webhook did not take it" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "webhook did not take it" in caplog.text
    assert Hook.received == []  # refused before any connection was opened


def test_the_check_is_cheap(make_app, seed, upstream):
    app = make_app()  # the default interval: spend read once a second at most
    seed.client = app.test_client()
    team_id = priced_team(seed, upstream, max_budget=100.0, soft_budget=90.0)
    key = seed.key(team_id, max_budget=100.0, user_id="someone")
    with app.test_request_context("/v1/chat/completions", headers=bearer(key)):
        from webapp.auth.bearer import authenticate_bearer as authenticate
        principal = authenticate()
        budgets.check(principal)  # fills the caches
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        started = time.perf_counter()
        for _ in range(2000):
            budgets.check(principal)
        per_check = (time.perf_counter() - started) / 2000
        event.remove(db.engine, "before_cursor_execute", listener)
    # spend is read at most once per BUDGET_CHECK_INTERVAL, not per call
    assert len([s for s in statements if "spend" in s]) <= 2 * (per_check * 2000 + 1)
    # its cost per call is measured in bench/ (about 40 µs here with four subjects)
