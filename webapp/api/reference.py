"""/openapi.json: the JSON API described by its own route map."""
from flask import current_app, jsonify

from webapp import openapi
from webapp.api import bp
from webapp.auth.access import PUBLIC, declare


@bp.get("/openapi.json")
@declare(PUBLIC)
def openapi_document():
    return jsonify(openapi.document(current_app))
