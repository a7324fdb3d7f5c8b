"""/model/new, /model/update, /model/delete, /model/info."""
from flask import g, jsonify, request

from webapp.api import bp
from webapp.auth.access import ANY_KEY, declare
from webapp.extensions import db
from webapp.models import Deployment
from webapp.services import deployments, resolver, schemas
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


def _summed(rows, field: str):
    values = [r.params.get(field) for r in rows if r.params.get(field) is not None]
    return sum(values) if values else None


def _group(principal, name: str) -> dict | None:
    """One LiteLLM model group: a name the caller can call and what serves it."""
    resolution = resolver.resolve(principal, name)
    rows = [db.session.get(Deployment, d) for d in resolution.deployments]
    rows = [r for r in rows if r is not None]
    if not rows:
        return None
    first = rows[0]
    return {
        "model_group": name, "providers": sorted({r.provider for r in rows}),
        "mode": first.model_info.get("mode") or "chat",
        "input_cost_per_token": first.params.get("input_cost_per_token"),
        "output_cost_per_token": first.params.get("output_cost_per_token"),
        "max_input_tokens": first.model_info.get("max_input_tokens"),
        "max_output_tokens": first.model_info.get("max_output_tokens"),
        "tpm": _summed(rows, "tpm"), "rpm": _summed(rows, "rpm"),
        "supported_openai_params": None, "configurable_clientside_auth_params": None,
    }


@bp.get("/model_group/info")
@declare(ANY_KEY)
def model_group_info():
    """LiteLLM's model groups: each name the caller can call, with its providers."""
    wanted = request.args.get("model_group")
    names = [n for n in resolver.callable_names(g.principal) if not wanted or n == wanted]
    return jsonify({"data": [group for group in (_group(g.principal, n) for n in names)
                             if group is not None]})
