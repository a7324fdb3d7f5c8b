"""Everything survives a restart: a new app on the same database serves the same teams and keys."""
import os
import subprocess
import sys

from sqlalchemy import select

from tests.conftest import bearer
from webapp import ROOT
from webapp.extensions import db
from webapp.models import AuditEntry


def test_state_survives_a_new_process_on_the_same_database(make_app, app, seed, upstream):
    team_id = seed.team("Persistent")
    key = seed.key(team_id, key_alias="persistent-key")
    model = seed.model(key, team_id, upstream.url)
    app.extensions["teamgate.request_log"].flush()

    restarted = make_app().test_client()
    response = restarted.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "still there?"}]})
    assert response.status_code == 200
    assert upstream.received[-1].headers["api-key"] == "sk-provider-team-a-secret-1234"
    info = restarted.get(f"/team/info?team_id={team_id}", headers=bearer(key)).json
    assert info["team_info"]["litellm_model_table"]["model_aliases"] == {
        "my-team-model": model["model_name"]}
    assert info["keys"][0]["key_alias"] == "persistent-key"


def test_create_user_command(runner, seed):
    team_id = seed.team()
    result = runner.invoke(args=["create-user", "ana@example.com", "--password", "pw-long-enough",
                                 "--team", team_id, "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert f"admin of team {team_id}" in result.output
    again = runner.invoke(args=["create-user", "ana@example.com", "--password", "x"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_setup_creates_secret_files_once(tmp_path):
    env = {"PATH": os.environ["PATH"], "TEAMGATE_INSTANCE_PATH": str(tmp_path)}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "setup"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    for name in ("master.key", "encryption.key", "secret.key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    master = (tmp_path / "master.key").read_text().strip()
    assert "Master key (shown once" in first.stdout and master in first.stdout
    assert "Dashboard admin (first run only): admin@teamgate.local / " in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "master.key").read_text().strip() == master
    assert master not in second.stdout and "Dashboard admin" not in second.stdout


def test_https_setting_makes_the_session_cookie_secure(make_app, monkeypatch):
    assert not make_app().config.get("SESSION_COOKIE_SECURE")
    monkeypatch.setenv("TEAMGATE_HTTPS", "1")
    assert make_app().config["SESSION_COOKIE_SECURE"] is True


def test_command_line_changes_are_audited(app, runner, seed):
    team_id = seed.team()
    runner.invoke(args=["create-user", "bo@example.com", "--password", "pw-long-enough",
                        "--team", team_id])
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.actor == "operator")
                                  .order_by(AuditEntry.id)).all()
        assert [(r.action, r.object_id) for r in rows] == [
            ("user.create", "bo@example.com"), ("member.add", "bo@example.com")]
