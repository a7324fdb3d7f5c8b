"""The OpenAI-compatible routes: one per registered operation (webapp/operations/), and the
model list."""
import time

from flask import Blueprint, g, jsonify

from webapp import operations
from webapp.auth.access import ANY_KEY, declare
from webapp.proxy import calls, hops, stored_responses
from webapp.services import resolver

bp = Blueprint("proxy", __name__)
bp.after_request(hops.name_answer)


def _view(operation: operations.Operation):
    def proxied():
        return calls.handle(operation.name)

    proxied.__name__ = operation.endpoint
    proxied.__doc__ = operation.summary
    proxied.body_schema = operation.body_schema
    view = declare(ANY_KEY)(proxied)
    view.error_body = operation.error_body
    view.error_schema = operation.error_schema
    return view


for _operation in operations.registered():
    _proxied = _view(_operation)
    for _path in _operation.paths:
        bp.add_url_rule(_path, endpoint=_operation.endpoint, view_func=_proxied, methods=["POST"])
stored_responses.register(bp)  # GET, DELETE, cancel and input_items of one response


@bp.get("/v1/models")
@bp.get("/models")
@declare(ANY_KEY)
def models():
    created = int(time.time())
    names = resolver.callable_names(g.principal)
    return jsonify({"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": "teamgate"}
        for name in names]})
