"""The permission matrix: every dashboard route, for a member, a team admin, the site admin, a
user of another team, and a logged-out visitor. Every route declares its access level."""
import pytest


# method, path, level, safe: whether a permitted caller may send it empty without changing data
ROUTES = [
    ("GET", "/ui/", "user", True),
    ("GET", "/ui/password", "user", True),
    ("POST", "/ui/password", "user", True),
    ("GET", "/ui/teams/{a}/models", "team_member", True),
    ("GET", "/ui/teams/{a}/models/new", "team_member", True),
    ("POST", "/ui/teams/{a}/models/new", "team_member", True),
    ("GET", "/ui/teams/{a}/models/fields?provider=azure", "team_member", True),
    ("POST", "/ui/teams/{a}/models/test", "team_member", True),
    ("GET", "/ui/teams/{a}/models/{m}/edit", "team_member", True),
    ("POST", "/ui/teams/{a}/models/{m}/edit", "team_member", True),
    ("GET", "/ui/teams/{a}/models/{m}/delete", "team_member", True),
    ("POST", "/ui/teams/{a}/models/{m}/delete", "team_member", False),
    ("POST", "/ui/teams/{a}/models/{m}/test", "team_member", True),
    ("GET", "/ui/teams/{a}/credentials", "team_member", True),
    ("POST", "/ui/teams/{a}/credentials", "team_member", True),
    ("POST", "/ui/teams/{a}/credentials/{c}/replace", "team_member", True),
    ("POST", "/ui/teams/{a}/credentials/{c}/bind", "team_admin", True),
    ("GET", "/ui/teams/{a}/credentials/{c}/delete", "team_member", True),
    ("POST", "/ui/teams/{a}/credentials/{c}/delete", "team_member", False),
    ("GET", "/ui/teams/{a}/aliases", "team_member", True),
    ("GET", "/ui/teams/{a}/aliases/resolve?name=my-team-model", "team_member", True),
    ("GET", "/ui/teams/{a}/playground", "team_member", True),
    ("POST", "/ui/teams/{a}/playground/chat", "team_member", True),
    ("GET", "/ui/teams/{a}/usage", "team_member", True),
    ("GET", "/ui/teams/{a}/usage.csv", "team_member", True),
    ("GET", "/ui/teams/{a}/keys", "team_admin", True),
    ("POST", "/ui/teams/{a}/keys", "team_admin", False),
    ("GET", "/ui/teams/{a}/keys/{k}/revoke", "team_admin", True),
    ("POST", "/ui/teams/{a}/keys/{k}/revoke", "team_admin", False),
    ("GET", "/ui/teams/{a}/members", "team_admin", True),
    ("POST", "/ui/teams/{a}/members", "team_admin", True),
    ("POST", "/ui/teams/{a}/members/remove", "team_admin", True),
    ("GET", "/ui/teams/{a}/audit", "team_admin", True),
    ("GET", "/ui/admin/teams", "site_admin", True),
    ("POST", "/ui/admin/teams", "site_admin", True),
    ("POST", "/ui/admin/teams/{a}/rename", "site_admin", True),
    ("GET", "/ui/admin/teams/{a}/delete", "site_admin", True),
    ("POST", "/ui/admin/teams/{a}/delete", "site_admin", False),
    ("GET", "/ui/admin/users", "site_admin", True),
    ("POST", "/ui/admin/users", "site_admin", True),
    ("POST", "/ui/admin/users/{u}/teams", "site_admin", True),
    ("GET", "/ui/admin/models", "site_admin", True),
    ("POST", "/ui/admin/models", "site_admin", True),
    ("GET", "/ui/admin/models/fields?provider=anthropic", "site_admin", True),
    ("GET", "/ui/admin/models/{g}/delete", "site_admin", True),
    ("POST", "/ui/admin/models/{g}/delete", "site_admin", False),
    ("GET", "/ui/admin/audit", "site_admin", True),
]
# provider keys stored by the world fixture: no page may ever show them
CANARIES = ("sk-provider-team-a-secret-1234", "sk-cred-canary-9876", "sk-global-12345678")
ROLES = ("member", "team_admin", "admin", "other", None)
# who gets in at each level (the "other" user is in team B only)
ADMITTED = {
    "user": {"member", "team_admin", "admin", "other"},
    "team_member": {"member", "team_admin", "admin"},
    "team_admin": {"team_admin", "admin"},
    "site_admin": {"admin"},
}


def expected_refusal(level, role):
    if role is None:
        return "login"
    if role in ADMITTED[level]:
        return None
    if level == "team_admin" and role == "member":
        return 403
    return 404


def fill(path, world):
    return path.format(a=world.team_a, m=world.model_a["model_id"], c=world.credential_a,
                       k=world.key_a_token, g=world.global_model, u=world.user_id)


def test_every_dashboard_route_declares_access_and_is_in_the_matrix(app):
    declared = {(m, p.split("?")[0]) for m, p, _, _ in ROUTES}
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/ui") or rule.rule == "/"):
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "access", None), f"{rule.rule} declares no access level"
        if rule.rule in ("/", "/ui/login", "/ui/logout"):
            continue
        path = (rule.rule.replace("<team_id>", "{a}").replace("<model_id>", "{m}")
                .replace("<credential_id>", "{c}").replace("<token>", "{k}")
                .replace("<user_id>", "{u}"))
        if path.startswith("/ui/admin/models/{m}"):
            path = path.replace("{m}", "{g}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in declared, f"{method} {rule.rule} missing from the matrix"
            level = next(lv for m, p, lv, _ in ROUTES if (m, p.split("?")[0]) == (method, path))
            assert view.access == level


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(app, world, as_user, role):
    client = as_user(role)
    for method, path, level, safe in ROUTES:
        url = fill(path, world)
        refusal = expected_refusal(level, role)
        if refusal is None and not safe:
            continue  # destructive for a permitted caller: covered by the behaviour tests
        response = client.get(url) if method == "GET" else client.post(url, {})
        where = f"{role} {method} {path}: {response.status_code}"
        body = response.get_data(as_text=True)
        for secret in CANARIES + (world.team_a_key,):
            assert secret not in body, where
        if refusal == "login":
            assert response.status_code == 302, where
            assert "/ui/login" in response.headers["Location"], where
        elif refusal is not None:
            assert response.status_code == refusal, where
            assert "my-team-model" not in response.get_data(as_text=True), where
        else:
            assert response.status_code in (200, 302, 400), where
            if method == "GET":
                assert response.status_code == 200, where
