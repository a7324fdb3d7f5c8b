"""A team's members: a team admin adds existing users or removes them."""
from flask import g, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectChoice, SelectField
from wtforms.validators import DataRequired, Length

from webapp.dashboard import bp
from webapp.auth.dashboard_access import TEAM_ADMIN, access
from webapp.errors import APIError
from webapp.extensions import db
from webapp.services import teams, users

ROLES = [SelectChoice("member", "Member"), SelectChoice("admin", "Team admin")]


class MemberForm(FlaskForm):
    email = EmailField("Email of an existing user", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=ROLES, default="member")


class RemoveForm(FlaskForm):
    user_id = HiddenField(validators=[DataRequired()])


@bp.route("/teams/<team_id>/members", methods=["GET", "POST"])
@access(TEAM_ADMIN)
def members(team_id):
    form = MemberForm()
    if form.validate_on_submit():
        if users.find(None, form.email.data) is None:
            form.email.errors = ["No user with this email; the site admin creates users."]
        else:
            teams.add_members(g.principal, team_id, [{
                "user_email": form.email.data, "role": teams.ROLE_TO_LITELLM[form.role.data]}])
            db.session.commit()
            return redirect(url_for("dashboard.members", team_id=team_id))
    return render_template("dashboard/members/index.html", team=g.team, form=form,
                           rows=teams.members(g.team), remove=RemoveForm()), \
        400 if form.errors else 200


@bp.post("/teams/<team_id>/members/remove")
@access(TEAM_ADMIN)
def member_remove(team_id):
    form = RemoveForm()
    if not form.validate_on_submit():
        raise APIError(400, "Choose a member to remove.")
    teams.remove_member(g.principal, team_id, form.user_id.data, None)
    db.session.commit()
    return redirect(url_for("dashboard.members", team_id=team_id))
