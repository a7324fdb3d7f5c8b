"""A team's provider keys: pasted once under a name, masked from then on, replaced in one place,
and allowed at further hosts only by a team admin."""
from flask import g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from webapp.dashboard import bp
from webapp.auth.dashboard_access import TEAM_ADMIN, TEAM_MEMBER, access
from webapp.errors import APIError
from webapp.extensions import db
from webapp.services import credentials


class CredentialForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=256)],
                       description="For example: Sweden Azure key")
    secret = PasswordField("Key", validators=[DataRequired(), Length(max=4096)])
    api_base = StringField("API base URL", validators=[Length(max=2048)],
                           description="The host this key may be sent to, for example "
                                       "https://my-endpoint.openai.azure.com. Blank: the first "
                                       "model that uses the key decides.")


class ReplaceForm(FlaskForm):
    secret = PasswordField("New key value", validators=[DataRequired(), Length(max=4096)])


class BindForm(FlaskForm):
    api_base = StringField("Also allow at", validators=[DataRequired(), Length(max=2048)])


def _page(team_id, form, error=None, status=200):
    return render_template("dashboard/credentials/index.html", team=g.team, form=form,
                           error=error, rows=credentials.for_team(team_id),
                           usage=credentials.usage_counts(team_id), replace=ReplaceForm(),
                           can_bind=g.principal.team_role(team_id) == "admin"), status


@bp.route("/teams/<team_id>/credentials", methods=["GET", "POST"])
@access(TEAM_MEMBER)
def credentials_index(team_id):
    form = CredentialForm()
    if form.validate_on_submit():
        try:
            credentials.create(g.principal, team_id, form.name.data, form.secret.data,
                               form.api_base.data)
            db.session.commit()
            return redirect(url_for("dashboard.credentials_index", team_id=team_id))
        except APIError as error:
            db.session.rollback()
            field = form.api_base if (error.param or "").endswith("api_base") else form.name
            field.errors = [error.message]
    return _page(team_id, form, status=400 if form.errors else 200)


@bp.post("/teams/<team_id>/credentials/<credential_id>/replace")
@access(TEAM_MEMBER)
def credential_replace(team_id, credential_id):
    row = credentials.get(team_id, credential_id)
    form = ReplaceForm()
    if not form.validate_on_submit():
        return _page(team_id, CredentialForm(formdata=None), "Paste the new key value.", 400)
    credentials.replace(g.principal, row, form.secret.data)
    db.session.commit()
    return redirect(url_for("dashboard.credentials_index", team_id=team_id))


@bp.post("/teams/<team_id>/credentials/<credential_id>/bind")
@access(TEAM_ADMIN)
def credential_bind(team_id, credential_id):
    row = credentials.get(team_id, credential_id)
    form = BindForm()
    try:
        if not form.validate_on_submit():
            raise APIError(400, "Give the API base URL to allow this key at.", param="api_base")
        credentials.bind(g.principal, row, form.api_base.data.strip())
        db.session.commit()
    except APIError as error:
        db.session.rollback()
        return _page(team_id, CredentialForm(formdata=None), error.message, error.status)
    return redirect(url_for("dashboard.credentials_index", team_id=team_id))


@bp.route("/teams/<team_id>/credentials/<credential_id>/delete", methods=["GET", "POST"])
@access(TEAM_MEMBER)
def credential_delete(team_id, credential_id):
    row = credentials.get(team_id, credential_id)
    if request.method == "POST":
        try:
            credentials.delete(g.principal, row)
            db.session.commit()
        except APIError as error:
            db.session.rollback()
            return _page(team_id, CredentialForm(formdata=None), error.message, 400)
        return redirect(url_for("dashboard.credentials_index", team_id=team_id))
    return render_template("dashboard/confirm.html", team=g.team,
                           question=f"Delete the provider key {row.name}?",
                           back=url_for("dashboard.credentials_index", team_id=team_id))
