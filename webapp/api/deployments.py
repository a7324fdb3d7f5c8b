"""/model/new, /model/update, /model/delete, /model/info."""
from flask import g, jsonify, request

from webapp.api import bp
from webapp.auth.access import ANY_KEY, declare
from webapp.extensions import db
from webapp.services import deployments, schemas
from webapp.services.validation import json_body, validate


@bp.post("/model/new")
@bp.post("/model/add")
@declare(ANY_KEY)
def model_new():
    body = validate(json_body(), schemas.MODEL_NEW)
    row = deployments.register(g.principal, body)
    db.session.commit()
    return jsonify(deployments.serialize(row))


@bp.post("/model/update")
@declare(ANY_KEY)
def model_update():
    body = validate(json_body(), schemas.MODEL_UPDATE)
    row = deployments.update(g.principal, body)
    db.session.commit()
    return jsonify(deployments.serialize(row))


@bp.post("/model/delete")
@declare(ANY_KEY)
def model_delete():
    body = validate(json_body(), schemas.MODEL_DELETE)
    deployments.delete(g.principal, body["id"])
    db.session.commit()
    return jsonify({"message": f"Model: {body['id']} deleted successfully"})


@bp.get("/model/info")
@bp.get("/v1/model/info")
@declare(ANY_KEY)
def model_info():
    rows = deployments.visible(g.principal, request.args.get("litellm_model_id"))
    return jsonify({"data": [deployments.serialize(r, public=True) for r in rows]})
