"""Logging in and out of the dashboard, and changing a password (a one-time one too)."""
import random

from flask import (Blueprint, current_app, g, make_response, redirect, render_template, session,
                   url_for)
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from webapp.auth.dashboard_access import access
from webapp.auth.dashboard_paths import PREFIX
from webapp.auth.sessions import LoginRefused, password_check
from webapp.blocking import hold_connection
from webapp.extensions import db
from webapp.models.base import new_id
from webapp.services import users

bp = Blueprint("auth", __name__, url_prefix=PREFIX)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=12, max=1024)])
    confirm = PasswordField("Repeat the new password",
                            validators=[EqualTo("password", "The passwords differ.")])


@bp.route("/login", methods=["GET", "POST"])
@access("public")
def login():
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    email = form.email.data.strip().lower()
    try:
        with password_check(email) as succeeded:
            user = users.authenticate(email, form.password.data)
            if user is not None:
                succeeded()
    except LoginRefused as refused:
        return _refused(form, refused)
    if user is None:
        return render_template("auth/login.html", form=form,
                               error="Wrong email or password."), 401
    _new_session(user)
    if user.must_change_password:
        return redirect(url_for("auth.password"))
    return redirect(url_for("dashboard.home"))


def _new_session(user):
    """Log the user in on a fresh session: what it held before, its CSRF token among it, is
    dropped, so a token fixed before the login (by whoever could plant one) is refused after."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    login_user(user)


def _refused(form, refused: LoginRefused):
    """The login page saying why, 429, answered at once."""
    response = make_response(render_template("auth/login.html", form=form,
                                             error=refused.message), 429)
    return _held(response, refused)


def _held(response, refused: LoginRefused):
    """Retry-After on a refused password check; the connection then waits a moment before its
    next request, between one and two holds: clients refused together do not all come back in
    the same instant."""
    response.headers["Retry-After"] = str(refused.retry_after)
    hold = min(refused.retry_after, current_app.config["LOGIN_REFUSED_HOLD"])
    return hold_connection(response, hold * random.uniform(1.0, 2.0))


@bp.post("/logout")
@access("user")
def logout():
    # a new session token makes every copy of the old session cookie worthless
    current_user.session_token = new_id()
    db.session.commit()
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@access("user")
def password():
    """Change the password, proving the current one: after a one-time password too (README,
    Security), so that a session alone never sets a password."""
    user = current_user._get_current_object()
    form = PasswordForm()
    if user.must_change_password:
        form.current.label.text = "One-time password"
    if not form.validate_on_submit():
        return _password_page(form, user, None, 400 if form.is_submitted() else 200)
    try:
        with password_check(user.email) as succeeded:
            if not users.check_password(user, form.current.data):
                return _password_page(form, user, "That is not your current password.", 403)
            succeeded()
            users.set_password(user, form.password.data)
    except LoginRefused as refused:
        return _password_page(form, user, refused.message, 429, refused)
    user.must_change_password = False
    db.session.commit()
    login_user(user)  # the session token changed
    return redirect(url_for("dashboard.home"))


def _password_page(form, user, error, status, refused: LoginRefused | None = None):
    response = make_response(render_template("auth/password.html", form=form, error=error,
                                             forced=user.must_change_password), status)
    return _held(response, refused) if refused else response
