"""A team's virtual keys: generate (shown once), list masked with last use, revoke."""
from flask import g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional, Regexp

from webapp.dashboard import bp
from webapp.auth.dashboard_access import TEAM_ADMIN, access
from webapp.errors import APIError
from webapp.extensions import db
from webapp.services import keys


class KeyForm(FlaskForm):
    key_alias = StringField("Alias", validators=[Optional(), Length(max=256)],
                            description="A name to recognise the key by, unique.")
    duration = StringField("Expires after", validators=[Optional(), Regexp(
        r"^\d+[smhd]$", message="Use a number and s, m, h or d, for example 30d.")],
        description="Blank: never. For example 30d or 12h.")


def _team_keys(team_id):
    return [k for k in keys.visible(g.principal) if k.team_id == team_id]


def _page(team_id, form, created=None, error=None, status=200):
    return render_template("dashboard/keys/index.html", team=g.team, form=form, created=created,
                           error=error, rows=_team_keys(team_id)), status


@bp.route("/teams/<team_id>/keys", methods=["GET", "POST"])
@access(TEAM_ADMIN)
def keys_index(team_id):
    form = KeyForm()
    if form.validate_on_submit():
        try:
            created = keys.generate(g.principal, {
                "team_id": team_id, "key_alias": form.key_alias.data or None,
                "duration": form.duration.data or None, "user_id": g.principal.user_id})
            db.session.commit()
        except APIError as error:
            db.session.rollback()
            form.key_alias.errors = [error.message]
            return _page(team_id, form, status=400)
        return _page(team_id, KeyForm(formdata=None), created=created)
    return _page(team_id, form, status=400 if form.errors else 200)


def _team_key(team_id, token):
    row = keys.find(g.principal, token)
    if row.team_id != team_id:
        raise APIError(404, "Key not found.", param="key")
    return row


@bp.route("/teams/<team_id>/keys/<token>/revoke", methods=["GET", "POST"])
@access(TEAM_ADMIN)
def key_revoke(team_id, token):
    row = _team_key(team_id, token)
    if request.method == "POST":
        keys.delete(g.principal, [row])
        db.session.commit()
        return redirect(url_for("dashboard.keys_index", team_id=team_id))
    label = row.key_alias or row.key_name
    return render_template("dashboard/confirm.html", team=g.team, action="Revoke",
                           question=f"Revoke the key {label}? Callers using it get 401 at once.",
                           back=url_for("dashboard.keys_index", team_id=team_id))
