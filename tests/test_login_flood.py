"""A flood of logins: unknown emails cost what known ones cost and get the same answer; the
password checks are bounded per process (beyond the budget a login is refused at once, without
hashing) and per client address (counted in the database, so every worker and instance sees the
same counts); the record of failures stays small; a login waiting for its hash holds no
database connection."""
import re
import threading
import uuid
from datetime import timedelta

import argon2
from sqlalchemy import delete, func, insert, select, update

from tests.dashboard_support import PASSWORD, DashClient, password_hash
from webapp.auth.principal import MASTER
from webapp.extensions import db
from webapp.models import LoginCounter, User
from webapp.models.base import utcnow
from webapp.services import users

TOKEN = re.compile(r'(name="csrf-token" content="|name="csrf_token" type="hidden" value=")[^"]+')


class Gate:
    """Stands in for the semaphore in front of argon2: notes every password check that reaches
    it and holds each one there until the test opens it."""

    def __init__(self):
        self.reached = threading.Event()
        self.opened = threading.Event()
        self.entries = 0

    def __enter__(self):
        self.entries += 1
        self.reached.set()
        assert self.opened.wait(10), "the gate was never opened"

    def __exit__(self, *exc):
        return False


class RecordingHasher:
    """Stands in for the users' PasswordHasher and notes the argon2 work of every check."""

    def __init__(self, real):
        self.real = real
        self.work = []

    def verify(self, stored, password):
        self.work.append(("verify", argon2.extract_parameters(stored)))
        return self.real.verify(stored, password)

    def hash(self, password):
        stored = self.real.hash(password)
        self.work.append(("hash", argon2.extract_parameters(stored)))
        return stored

    def __getattr__(self, name):
        return getattr(self.real, name)


def post_login(client: DashClient, email: str, password: str = "not the password"):
    return client.post("/ui/login", {"email": email, "password": password})


def from_address(app, address: str) -> DashClient:
    client = DashClient(app)
    client.client.environ_base["REMOTE_ADDR"] = address
    client.refresh_token()
    return client


def in_thread(function) -> tuple[threading.Thread, dict]:
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function()))
    thread.start()
    return thread, result


def test_unknown_emails_cost_and_answer_what_known_ones_do(app, world, monkeypatch):
    with app.app_context():
        users.create(MASTER, "invited@example.com", None)  # no password set yet
        db.session.commit()
    hasher = RecordingHasher(users._hasher)
    monkeypatch.setattr(users, "_hasher", hasher)
    known = argon2.extract_parameters(password_hash())
    answers = []
    for email in ("a-member@example.com", "nobody-here@example.com", "invited@example.com"):
        hasher.work.clear()
        response = post_login(from_address(app, "192.0.2.10"), email)
        assert response.status_code == 401
        body = TOKEN.sub("TOKEN", response.get_data(as_text=True)).replace(email, "EMAIL")
        answers.append(body)
        # one argon2 verification with the parameters of a real user's hash, whoever asks
        assert hasher.work == [("verify", known)], email
    assert "Wrong email or password." in answers[0]
    assert answers[1] == answers[0] and answers[2] == answers[0]


def test_logins_beyond_the_budget_are_refused_at_once_without_hashing(app, world,
                                                                      monkeypatch):
    app.config["LOGIN_MAX_PENDING"] = 1
    gate = Gate()
    monkeypatch.setattr(users, "_hashing", gate)
    first, second = from_address(app, "192.0.2.20"), from_address(app, "192.0.2.21")
    waiting, login = in_thread(lambda: post_login(first, "a-member@example.com", PASSWORD))
    try:
        assert gate.reached.wait(5)
        refused_thread, refused = in_thread(lambda: post_login(second, "nobody@example.com"))
        refused_thread.join(3)
        answered_at_once = not refused_thread.is_alive()
    finally:
        gate.opened.set()
        waiting.join(10)
    assert answered_at_once, "the login beyond the budget waited for a hash"
    refused_thread.join(10)
    response = refused["value"]
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    body = response.get_data(as_text=True)
    assert "Too many logins at once; try again in a moment." in body
    assert 'name="email"' in body  # the login page, with its form
    assert gate.entries == 1  # the refused login never reached argon2
    assert login["value"].status_code == 302
    # the budget is free again
    assert post_login(second, "a-member@example.com", PASSWORD).status_code == 302


def test_failures_from_one_address_are_limited_whatever_the_email_on_every_worker(
        app, world, make_app):
    other_worker = make_app()
    for each in (app, other_worker):
        each.config.update(LOGIN_ADDRESS_FAILURES=3, LOGIN_WINDOW=300)
    for instance in (app, app, other_worker):
        response = post_login(from_address(instance, "203.0.113.7"),
                              f"{uuid.uuid4().hex}@example.com")
        assert response.status_code == 401
    for instance in (app, other_worker):
        response = post_login(from_address(instance, "203.0.113.7"), "a-member@example.com",
                              PASSWORD)
        assert response.status_code == 429
        assert 240 <= int(response.headers["Retry-After"]) <= 300
        body = response.get_data(as_text=True)
        assert "Too many failed logins from your address; try again in 5 minutes." in body
        assert 'name="email"' in body
    # another address is not affected
    assert post_login(from_address(app, "203.0.113.8"), "a-member@example.com",
                      PASSWORD).status_code == 302


def test_a_successful_login_does_not_count_against_the_address(app, world):
    app.config.update(LOGIN_ADDRESS_FAILURES=1)
    for _ in range(2):
        assert post_login(from_address(app, "203.0.113.30"), "a-member@example.com",
                          PASSWORD).status_code == 302
    assert post_login(from_address(app, "203.0.113.30"), "x@example.com").status_code == 401


def test_ipv6_clients_are_counted_by_their_64_bit_prefix(app, world):
    app.config.update(LOGIN_ADDRESS_FAILURES=1)
    assert post_login(from_address(app, "2001:db8:0:1::1"), "x@example.com").status_code == 401
    assert post_login(from_address(app, "2001:db8:0:1:ffff::2"),
                      "y@example.com").status_code == 429
    assert post_login(from_address(app, "2001:db8:0:2::1"), "x@example.com").status_code == 401


def test_the_record_of_failures_is_pruned_and_capped(app, world):
    app.config.update(LOGIN_MAX_KEYS=5, LOGIN_PRUNE_INTERVAL=0, LOGIN_ADDRESS_FAILURES=1,
                      LOGIN_WINDOW=300)
    now = utcnow()
    with app.app_context():
        db.session.execute(delete(LoginCounter))
        stale = [{"key": f"stale-{n}", "window_start": now - timedelta(seconds=301 + n),
                  "count": 1} for n in range(20)]
        live = [{"key": f"live-{n}", "window_start": now - timedelta(seconds=10 + n),
                 "count": 1} for n in range(10)]
        db.session.execute(insert(LoginCounter), stale + live)
        db.session.commit()
    assert post_login(from_address(app, "198.51.100.1"), "x@example.com").status_code == 401
    with app.app_context():
        keys = set(db.session.scalars(select(LoginCounter.key)))
        assert db.session.scalar(select(func.count()).select_from(LoginCounter)) <= 5
    assert not any(key.startswith("stale-") for key in keys)
    assert "live-9" not in keys  # the oldest live counts go first
    # the newest attempt is still counted
    assert post_login(from_address(app, "198.51.100.1"), "y@example.com").status_code == 429


def test_a_login_waiting_for_its_hash_holds_no_database_connection(app, world, monkeypatch):
    """Every proxied call needs a pooled connection now and then (the routing cache's check);
    logins that held theirs while argon2 ran emptied the pool and stalled those calls."""
    gate = Gate()
    monkeypatch.setattr(users, "_hashing", gate)
    client = from_address(app, "192.0.2.40")
    thread, login = in_thread(lambda: post_login(client, "a-member@example.com", PASSWORD))
    try:
        assert gate.reached.wait(5)
        with app.app_context():
            held = db.engine.pool.checkedout()
    finally:
        gate.opened.set()
        thread.join(10)
    assert held == 0
    assert login["value"].status_code == 302


def test_a_password_replaced_while_it_is_checked_no_longer_logs_in(app, world, monkeypatch):
    gate = Gate()
    monkeypatch.setattr(users, "_hashing", gate)
    client = from_address(app, "192.0.2.41")
    thread, login = in_thread(lambda: post_login(client, "a-member@example.com", PASSWORD))
    try:
        assert gate.reached.wait(5)
        with app.app_context():
            db.session.execute(update(User).where(User.email == "a-member@example.com")
                               .values(password_hash=users.NO_PASSWORD))
            db.session.commit()
    finally:
        gate.opened.set()
        thread.join(10)
    assert login["value"].status_code == 401
