"""The OpenAPI 3 document of the JSON API, generated from the route map, each route's access
declaration and the request schemas: a management view named `model_new` takes a body of schema
MODEL_NEW (services/schemas.py), a proxied route the body its operation declares
(webapp/operations/). Nothing here lists routes by hand, so the document cannot drift."""
import re

from flask import Flask

from webapp.auth.access import PUBLIC
from webapp.services import schemas

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                   "param": {"type": ["string", "null"]}, "code": {"type": "string"}}}}}
SUCCESS = {"type": ["object", "array"]}
JSON_BLUEPRINTS = ("api", "proxy")


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _success(view) -> dict:
    """JSON, unless the view declares another type (/metrics: Prometheus's text format)."""
    media_type = getattr(view, "media_type", None)
    return {media_type: {"schema": {"type": "string"}}} if media_type else _json(SUCCESS)


def _operation(view, method: str, path_parameters=()) -> dict:
    name = view.__name__
    operation = {
        "operationId": f"{name}_{method}",
        "summary": (view.__doc__ or name.replace("_", " ")).strip().splitlines()[0],
        "responses": {"200": {"description": "Success", "content": _success(view)},
                      "default": {"description": "Error", "content": _json(
                          getattr(view, "error_schema", None) or ERROR)}},
    }
    if view.access != PUBLIC:
        operation["security"] = [{"bearer": []}]
    body = getattr(view, "body_schema", None) or getattr(schemas, name.upper(), None)
    if method == "post":
        media_type = getattr(view, "body_media_type", "application/json")
        operation["requestBody"] = {"required": True,
                                    "content": {media_type: {"schema": body or {"type": "object"}}}}
    parameters = schemas.QUERY_PARAMETERS.get(name) or getattr(view, "query_parameters", {})
    listed = [{"name": param, "in": "path", "required": True,
               "schema": {"type": "string", "minLength": 1}} for param in path_parameters]
    listed += [{"name": param, "in": "query", "required": required, "schema": schema}
               for param, (schema, required) in parameters.items()]
    if listed:
        operation["parameters"] = listed
    return operation


def document(app: Flask) -> dict:
    paths: dict = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.partition(".")[0] not in JSON_BLUEPRINTS:
            continue  # the dashboard's HTML routes are not part of the JSON API
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(_path(rule.rule), {})[method.lower()] = _operation(
                view, method.lower(), sorted(rule.arguments))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Teamgate", "version": "1",
                 "description": "LiteLLM-compatible management API and OpenAI-compatible proxy."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
