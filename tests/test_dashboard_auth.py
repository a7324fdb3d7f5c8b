"""Logging in and out, replayed cookies, the login rate limit, changing a password, CSRF and
security headers."""
from tests.dashboard_support import PASSWORD, DashClient


def test_root_redirects_to_the_dashboard(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/")


def test_logged_out_user_is_sent_to_login(client):
    response = client.get("/ui/")
    assert response.status_code == 302 and "/ui/login" in response.headers["Location"]


def test_login_page_has_labels_and_security_headers(client):
    response = client.get("/ui/login")
    body = response.get_data(as_text=True)
    assert '<label for="email">' in body and '<label for="password">' in body
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in body  # no inline script, only src= tags
    assert "/static/js/htmx.min.js" in body


def test_login_and_logout_invalidates_the_session_server_side(app, world, as_user):
    client = as_user("member")
    assert client.get("/ui/").status_code == 200
    cookie = client.client.get_cookie("session").value
    assert client.post("/ui/logout").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    response = replay.get("/ui/")
    assert response.status_code == 302 and "/ui/login" in response.headers["Location"]


def test_wrong_password_is_refused_and_rate_limited(app, world):
    client = DashClient(app)
    for _ in range(5):
        response = client.login("a-member@example.com", "wrong password")
        assert response.status_code == 401
        assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.login("a-member@example.com", PASSWORD).status_code == 429
    # another address or another email is not blocked
    assert DashClient(app).login("a-admin@example.com").status_code == 302


def test_post_without_csrf_token_is_refused(app, world, as_user):
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    client = as_user("member")
    url = f"/ui/teams/{world.team_a}/credentials"
    response = client.client.post(url, data={"name": "x", "secret": "sk-something-long-1234"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    response = client.post(url, {"name": "x", "secret": "sk-something-long-1234"})
    assert response.status_code == 302


def test_a_csrf_token_from_before_login_is_refused_after_it(app, world):
    client = DashClient(app)
    assert client.login("a-member@example.com").status_code == 302
    before = client.token  # fetched from the login page, before logging in
    url = f"/ui/teams/{world.team_a}/credentials"
    form = {"name": "x", "secret": "sk-something-long-1234"}
    response = client.post(url, form, headers={"X-CSRFToken": before})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    client.refresh_token("/ui/")
    assert client.token != before
    assert client.post(url, form).status_code == 302


def test_login_without_csrf_token_is_refused(app, world):
    response = app.test_client().post("/ui/login", data={"email": "a-member@example.com",
                                                         "password": PASSWORD})
    assert response.status_code == 400


def test_one_time_password_must_be_replaced(app, world, as_user):
    admin = as_user("admin")
    response = admin.post("/ui/admin/users", {"email": "new@example.com"})
    body = response.get_data(as_text=True)
    password = body.split('id="otp" class="secret">')[1].split("<")[0]
    client = DashClient(app)
    assert client.login("new@example.com", password).headers["Location"].endswith("/ui/password")
    client.refresh_token("/ui/password")
    assert client.get("/ui/").headers["Location"].endswith("/ui/password")
    assert "One-time password" in client.get("/ui/password").get_data(as_text=True)
    new = {"password": "a brand new passphrase", "confirm": "a brand new passphrase"}
    # the forced change asks for the one-time password too: a session alone sets no password
    assert client.post("/ui/password", new).status_code == 400
    assert client.post("/ui/password", {**new, "current": "not-the-otp"}).status_code == 403
    response = client.post("/ui/password", {**new, "current": password})
    assert response.status_code == 302
    assert client.get("/ui/").status_code == 200
    assert DashClient(app).login("new@example.com", password).status_code == 401
    assert DashClient(app).login("new@example.com", new["password"]).status_code == 302


def test_changing_a_password_asks_for_the_current_one(app, world, as_user):
    client = as_user("member")
    new = {"password": "another long passphrase", "confirm": "another long passphrase"}
    response = client.post("/ui/password", new)
    assert response.status_code == 400
    response = client.post("/ui/password", {**new, "current": "wrong password"})
    assert response.status_code == 403
    assert "That is not your current password." in response.get_data(as_text=True)
    # nothing changed: the old password still logs in, the new one does not
    assert DashClient(app).login("a-member@example.com", new["password"]).status_code == 401
    assert DashClient(app).login("a-member@example.com").status_code == 302
    response = client.post("/ui/password", {**new, "current": PASSWORD})
    assert response.status_code == 302
    assert DashClient(app).login("a-member@example.com", new["password"]).status_code == 302


def test_only_the_dashboard_prefix_is_the_dashboard(app, world, as_user):
    """A path that merely begins with "/ui" is an API path: its 404 is JSON and it ignores the
    session cookie; a missing page under /ui/ is the dashboard's own HTML 404."""
    logged_in = as_user("member")
    lookalike = logged_in.get("/uix/models")
    assert lookalike.status_code == 404 and lookalike.is_json
    # the message points at a reference that exists
    assert "GET /openapi.json" in lookalike.json["error"]["message"]
    assert logged_in.get("/openapi.json").status_code == 200
    assert "Content-Security-Policy" not in lookalike.headers
    page = logged_in.get("/ui/no-such-page")
    assert page.status_code == 404 and not page.is_json
    assert "Content-Security-Policy" in page.headers
