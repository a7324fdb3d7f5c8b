"""The site admin's pages: teams, users and global models."""
from flask import g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.dashboard import bp
from webapp.auth.dashboard_access import SITE_ADMIN, access
from webapp.dashboard.members import ROLES
from webapp.dashboard.deployments import model_form, model_rows, save
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, Team, User
from webapp.services import deployments, schemas, teams, users


class TeamForm(FlaskForm):
    team_alias = StringField("Team name", validators=[DataRequired(), Length(max=256)])


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    is_admin = BooleanField("Site admin (sees every team)")


class AddToTeamForm(FlaskForm):
    team_id = SelectField("Team", choices=[])
    role = SelectField("Role", choices=ROLES, default="member")


def _team(team_id) -> Team:
    return teams.get_team_or_404(g.principal, team_id)


@bp.route("/admin/teams", methods=["GET", "POST"])
@access(SITE_ADMIN)
def admin_teams():
    form = TeamForm()
    if form.validate_on_submit():
        teams.create(g.principal, {"team_alias": form.team_alias.data.strip()})
        db.session.commit()
        return redirect(url_for("dashboard.admin_teams"))
    return render_template("dashboard/admin/teams.html", form=form, rename=TeamForm(formdata=None),
                           rows=teams.visible(g.principal)), 400 if form.errors else 200


@bp.post("/admin/teams/<team_id>/rename")
@access(SITE_ADMIN)
def admin_team_rename(team_id):
    form = TeamForm()
    if not form.validate_on_submit():
        raise APIError(400, "Give the team a name.", param="team_alias")
    teams.update(g.principal, {"team_id": _team(team_id).id,
                               "team_alias": form.team_alias.data.strip()})
    db.session.commit()
    return redirect(url_for("dashboard.admin_teams"))


@bp.route("/admin/teams/<team_id>/delete", methods=["GET", "POST"])
@access(SITE_ADMIN)
def admin_team_delete(team_id):
    team = _team(team_id)
    if request.method == "POST":
        teams.delete(g.principal, [team.id])
        db.session.commit()
        return redirect(url_for("dashboard.admin_teams"))
    return render_template("dashboard/confirm.html", team=None, back=url_for(
        "dashboard.admin_teams"), question=f"Delete the team {team.alias or team.id} with its "
                                           "models, keys and provider keys?")


def _add_form() -> AddToTeamForm:
    form = AddToTeamForm()
    form.team_id.choices = [SelectChoice(t.id, t.alias or t.id) for t in teams.visible(g.principal)]
    return form


@bp.route("/admin/users", methods=["GET", "POST"])
@access(SITE_ADMIN)
def admin_users():
    form, created, password = UserForm(), None, None
    if form.validate_on_submit():
        try:
            created = users.create(g.principal, form.email.data, None,
                                   is_admin=form.is_admin.data)
            password = users.one_time_password(created)
            db.session.commit()
            form = UserForm(formdata=None)
        except APIError as error:
            db.session.rollback()
            form.email.errors = [error.message]
    rows = list(db.session.scalars(select(User).order_by(User.email)))
    names = {t.id: t.alias or t.id for t in teams.visible(g.principal)}
    return render_template("dashboard/admin/users.html", form=form, rows=rows, names=names,
                           created=created, password=password, add=_add_form()), \
        400 if form.errors else 200


@bp.post("/admin/users/<user_id>/teams")
@access(SITE_ADMIN)
def admin_user_add(user_id):
    user = db.get_or_404(User, user_id)
    form = _add_form()
    if not form.validate_on_submit():
        raise APIError(400, "Choose a team and a role.", param="team_id")
    # through the teams service, so the change lands in the audit trail like /team/member_add
    teams.add_members(g.principal, form.team_id.data, [
        {"user_id": user.id, "role": teams.ROLE_TO_LITELLM[form.role.data]}])
    db.session.commit()
    return redirect(url_for("dashboard.admin_users"))


@bp.route("/admin/models", methods=["GET", "POST"])
@access(SITE_ADMIN)
def admin_models():
    form, error = model_form(None), None
    if form.validate_on_submit():
        row, error = save(form, form.new_body(None), schemas.MODEL_NEW, deployments.register)
        if row is not None:
            return redirect(url_for("dashboard.admin_models"))
    rows = db.session.scalars(select(Deployment).where(Deployment.team_id.is_(None))
                              .order_by(Deployment.public_name))
    return render_template("dashboard/admin/models.html", form=form, error=error, team=None,
                           models=model_rows(rows)), 400 if form.errors or error else 200


@bp.route("/admin/models/<model_id>/delete", methods=["GET", "POST"])
@access(SITE_ADMIN)
def admin_model_delete(model_id):
    row = deployments.find_writable(g.principal, model_id)
    if request.method == "POST":
        deployments.delete(g.principal, row.id)
        db.session.commit()
        return redirect(url_for("dashboard.admin_models"))
    return render_template("dashboard/confirm.html", team=None, back=url_for(
        "dashboard.admin_models"), question=f"Delete the model {row.public_name}?")


@bp.get("/admin/models/fields")
@access(SITE_ADMIN)
def admin_model_fields():
    form = model_form(None, formdata=request.args)
    return render_template("dashboard/models/_provider_fields.html", form=form)
