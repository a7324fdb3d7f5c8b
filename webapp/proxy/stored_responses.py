"""The Responses API's routes on one response: GET and DELETE /v1/responses/{id}, POST
/v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items, and the same under /openai/ for
Azure OpenAI's client. A response Teamgate relayed is asked of the deployment that made it, with
the team's key; one it made through chat completions is answered from the conversation it keeps.
Another team's id, an expired one and one never made all answer the same 404."""
import json
from urllib.parse import urlencode

from flask import Response, g, jsonify, request

from webapp.auth.access import ANY_KEY, declare
from webapp.errors import APIError
from webapp.proxy import calls, hops
from webapp.upstream import failures, masking, headers as upstream_headers
from webapp.proxy.conversations import not_found
from webapp.providers.base import PreparedCall
from webapp.services import resolver, response_store
from webapp.services.cache import routing_cache
from webapp.upstream.egress import check_api_base


def _stored(response_id: str) -> response_store.Stored:
    stored = response_store.find(g.principal, response_id)
    if stored is None:
        raise not_found(response_id)
    return stored


def _target(stored: response_store.Stored):
    """The deployment that made the response, if this caller may still call it."""
    resolution = resolver.resolve(g.principal, stored.public_model)
    if stored.deployment_id not in resolution.deployments:
        raise not_found(stored.response_id)
    target = resolution.targets[resolution.deployments.index(stored.deployment_id)]
    if isinstance(target, resolver.Refusal):
        raise APIError(403, target.message)
    if target.api_base:
        routing_cache().get(("egress", target.api_base),
                            lambda: check_api_base(target.api_base))
    return target


def _relay(stored: response_store.Stored, method: str, tail: str = "") -> Response:
    """The call asked of the upstream that holds the response, its answer relayed."""
    target = _target(stored)
    url = target.provider.response_url(target, f"/{stored.response_id}{tail}")
    query = urlencode([(name, value) for name, value in request.args.items(multi=True)
                       if name != "api-version"])  # Azure's client's: the deployment has its own
    if query and method == "GET":
        url += ("&" if "?" in url else "?") + query
    headers = {"Content-Type": "application/json", **target.provider.auth_headers(target)}
    body = {} if method == "POST" else None
    sent = calls.send_call(PreparedCall(url, headers, body, method), target, False,
                           hops.arrival())
    try:
        content = sent.response.content
        payload = json.loads(content)
    except (ValueError, RecursionError):
        raise failures.invalid_body() from None
    finally:
        sent.response.close()
    secret = masking.Secret.of(target)
    content = masking.answer(secret, content, payload)
    response = Response(content, mimetype="application/json")
    response.headers.update(upstream_headers.relayed(sent.response.headers, secret))
    response.headers["x-teamgate-model-id"] = target.deployment_id
    return response


def _kept(stored: response_store.Stored) -> dict:
    if stored.response is None:
        raise APIError(404, f"Response with id '{stored.response_id}' was too large for "
                            "Teamgate to keep.")
    return stored.response


@declare(ANY_KEY)
def response(response_id: str):
    """Retrieve (GET) or delete (DELETE) a response."""
    stored = _stored(response_id)
    if request.method == "DELETE":
        answer = _relay(stored, "DELETE") if not stored.kept else jsonify(
            {"id": response_id, "object": "response.deleted", "deleted": True})
        response_store.forget(g.principal, response_id)
        return answer
    return _relay(stored, "GET") if not stored.kept else jsonify(_kept(stored))


@declare(ANY_KEY)
def response_cancel(response_id: str):
    """Cancel a background response."""
    stored = _stored(response_id)
    if stored.kept:
        raise APIError(400, "Only a response created with background=true can be cancelled; "
                            "this one was answered while its call waited.")
    return _relay(stored, "POST", "/cancel")


@declare(ANY_KEY)
def response_input_items(response_id: str):
    """The input items of a response."""
    stored = _stored(response_id)
    if not stored.kept:
        return _relay(stored, "GET", "/input_items")
    items = [item if isinstance(item, dict) and item.get("id") else
             {**item, "id": f"{response_id}_item_{index}"} for index, item in
             enumerate(stored.items or [])]
    if request.args.get("order", "desc") == "desc":
        items.reverse()
    return jsonify({"object": "list", "data": items, "has_more": False,
                    "first_id": items[0]["id"] if items else None,
                    "last_id": items[-1]["id"] if items else None})


def register(bp):
    for prefix in ("/v1", "", "/openai"):  # /openai: Azure OpenAI's client
        bp.add_url_rule(f"{prefix}/responses/<response_id>", view_func=response,
                        methods=["GET", "DELETE"])
        bp.add_url_rule(f"{prefix}/responses/<response_id>/cancel", view_func=response_cancel,
                        methods=["POST"])
        bp.add_url_rule(f"{prefix}/responses/<response_id>/input_items",
                        view_func=response_input_items, methods=["GET"])
