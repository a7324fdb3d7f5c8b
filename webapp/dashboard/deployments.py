"""A team's models: list, register (fields follow the provider), edit, delete, test."""
from flask import g, redirect, render_template, request, url_for

from webapp.dashboard import bp
from webapp.auth.dashboard_access import TEAM_MEMBER, access
from webapp.dashboard.model_forms import ModelForm, upstream_url
from webapp.dashboard.probe import draft_target, run
from webapp.errors import APIError
from webapp import providers
from webapp.extensions import db
from webapp.services import credentials, deployments, resolver, schemas
from webapp.services.validation import validate


def model_rows(rows) -> list[dict]:
    return [{"row": row, "data": deployments.serialize(row, public=True),
             "url": upstream_url(row.params),
             "upstream_model": providers.for_params(row.params)[1]} for row in rows]


def model_form(team_id: str | None, editing: bool = False, formdata=None) -> ModelForm:
    form = ModelForm(formdata=formdata) if formdata is not None else ModelForm()
    names = [c.name for c in credentials.for_team(team_id)] if team_id else []
    form.set_credentials(names, "Keep the stored key" if editing else "None: paste a key below")
    return form


def _team_model(team_id: str, model_id: str):
    row = deployments.find_writable(g.principal, model_id)
    if row.team_id != team_id:
        raise APIError(404, f"Model id={model_id} not found.", param="id")
    return row


def save(form: ModelForm, body: dict, schema: dict, service):
    """Validate the body with the API's schema, call the service; errors go beside fields."""
    try:
        row = service(g.principal, validate(body, schema))
        db.session.commit()
        return row, None
    except APIError as error:
        db.session.rollback()
        return None, None if form.show_error(error) else error.message


@bp.get("/teams/<team_id>/models")
@access(TEAM_MEMBER)
def models(team_id):
    return render_template("dashboard/models/index.html", team=g.team,
                           models=model_rows(deployments.for_team(team_id)))


@bp.route("/teams/<team_id>/models/new", methods=["GET", "POST"])
@access(TEAM_MEMBER)
def model_new(team_id):
    form, error = model_form(team_id), None
    if form.validate_on_submit():
        row, error = save(form, form.new_body(team_id), schemas.MODEL_NEW,
                          deployments.register)
        if row is not None:
            return redirect(url_for("dashboard.models", team_id=team_id))
    status = 400 if form.errors or error else 200
    return render_template("dashboard/models/new.html", team=g.team, form=form,
                           error=error), status


@bp.get("/teams/<team_id>/models/fields")
@access(TEAM_MEMBER)
def model_fields(team_id):
    """The provider-specific part of the form, swapped in when the provider changes."""
    # what was typed so far comes along in the query, so the swap keeps it (never the key)
    form = model_form(team_id, editing=request.args.get("editing") == "1",
                      formdata=request.args)
    return render_template("dashboard/models/_provider_fields.html", form=form)


@bp.post("/teams/<team_id>/models/test")
@access(TEAM_MEMBER)
def model_test_draft(team_id):
    form = model_form(team_id)
    form.validate()
    try:
        target = draft_target(g.principal, team_id, form.new_body(team_id))
        db.session.commit()  # a named key's first use binds it (audited) before it is sent
    except APIError as error:
        db.session.rollback()
        return _test_result(error=error.message)
    return _test_result(result=run(target))


def _test_result(**outcome):
    return render_template("dashboard/models/_test_result.html", **outcome)


@bp.route("/teams/<team_id>/models/<model_id>/edit", methods=["GET", "POST"])
@access(TEAM_MEMBER)
def model_edit(team_id, model_id):
    row = _team_model(team_id, model_id)
    form, error = model_form(team_id, editing=True), None
    if request.method == "GET":
        form.fill_from(row)
    elif form.validate_on_submit():
        saved, error = save(form, form.update_body(model_id), schemas.MODEL_UPDATE,
                            deployments.update)
        if saved is not None:
            return redirect(url_for("dashboard.models", team_id=team_id))
    status = 400 if form.errors or error else 200
    return render_template("dashboard/models/edit.html", team=g.team, form=form, row=row,
                           data=deployments.serialize(row, public=True), error=error), status


@bp.route("/teams/<team_id>/models/<model_id>/delete", methods=["GET", "POST"])
@access(TEAM_MEMBER)
def model_delete(team_id, model_id):
    row = _team_model(team_id, model_id)
    if request.method == "POST":
        deployments.delete(g.principal, row.id)
        db.session.commit()
        return redirect(url_for("dashboard.models", team_id=team_id))
    return render_template("dashboard/models/delete.html", team=g.team, row=row)


@bp.post("/teams/<team_id>/models/<model_id>/test")
@access(TEAM_MEMBER)
def model_test(team_id, model_id):
    row = _team_model(team_id, model_id)
    try:
        target = resolver.target_of(row)
    except APIError as error:  # its key is not bound to where it points: nothing is sent
        return _test_result(error=error.message)
    return _test_result(result=run(target))
