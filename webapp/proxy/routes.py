"""The OpenAI-compatible routes: one per registered operation (webapp/operations/), the same
under Azure OpenAI's /openai/deployments/{name}/... (the path names the model, the key comes in
api-key), and the model list and lookup."""
import time

from flask import Blueprint, g, jsonify

from webapp import operations
from webapp.auth.access import ANY_KEY, declare
from webapp.errors import APIError
from webapp.proxy import calls, hops, stored_responses
from webapp.services import resolver

bp = Blueprint("proxy", __name__)
bp.after_request(hops.name_answer)


DEPLOYMENT_PREFIX = "/openai/deployments/<deployment>/"


def _view(operation: operations.Operation, endpoint: str, by_path: bool = False):
    def proxied(deployment: str | None = None):
        return calls.handle(operation.name, deployment if by_path else None)

    proxied.__name__ = endpoint
    proxied.__doc__ = operation.summary
    proxied.body_schema = operation.body_schema
    if operation.multipart:
        proxied.body_media_type = "multipart/form-data"
    if by_path:
        proxied.query_parameters = {"api-version": ({"type": "string"}, False)}
    view = declare(ANY_KEY)(proxied)
    view.error_body = operation.error_body
    view.error_schema = operation.error_schema
    return view


for _operation in operations.registered():
    _proxied = _view(_operation, _operation.endpoint)
    for _path in _operation.paths:
        bp.add_url_rule(_path, endpoint=_operation.endpoint, view_func=_proxied, methods=["POST"])
    if _operation.deployment_path:
        _endpoint = "deployments_" + _operation.endpoint
        bp.add_url_rule(DEPLOYMENT_PREFIX + _operation.deployment_path, endpoint=_endpoint,
                        view_func=_view(_operation, _endpoint, by_path=True), methods=["POST"])
stored_responses.register(bp)  # GET, DELETE, cancel and input_items of one response


def _model(name: str, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "teamgate"}


@bp.get("/v1/models")
@bp.get("/models")
@declare(ANY_KEY)
def models():
    created = int(time.time())
    names = resolver.callable_names(g.principal)
    return jsonify({"object": "list", "data": [_model(name, created) for name in names]})


@bp.get("/v1/models/<path:model>")
@bp.get("/models/<path:model>")
@declare(ANY_KEY)
def model_retrieve(model: str):
    """A model this key can call, in OpenAI's shape; 404 for any other name, another team's
    included (it resolves like a name that does not exist)."""
    if not resolver.resolve(g.principal, model).targets:
        raise APIError(404, f"The model '{model}' does not exist or your key cannot call it. "
                            "Call /v1/models to view available models for your key.",
                       param="model")
    return jsonify(_model(model, int(time.time())))
