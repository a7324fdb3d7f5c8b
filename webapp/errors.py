"""The one error format of the JSON routes and the handlers that produce it."""
import logging
import uuid

from flask import current_app, jsonify, request
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from webapp.auth.dashboard_paths import is_dashboard_request
from webapp.extensions import db

log = logging.getLogger(__name__)

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout",
}


class APIError(Exception):
    """A failure the caller should see, in the contract's error format."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 error_type: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.error_type = error_type or TYPE_BY_STATUS.get(status, "server_error")
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type,
                          "param": self.param, "code": str(self.status)}}

    def response(self):
        response = jsonify(_shaped(self))
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def _shaped(error: APIError) -> dict:
    """The error's body as the route's clients read it: a route may declare a shape of its own
    (`error_body` on its view: Anthropic's on /v1/messages), else the contract's."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    shape = getattr(view, "error_body", None)
    return shape(error) if shape is not None else error.body()


HTTP_MESSAGES = {
    404: "No route {method} {path}. GET /openapi.json lists every route.",
    405: "Method {method} is not allowed on {path}.",
    413: "Request body too large: Teamgate takes at most {limit} MiB (TEAMGATE_MAX_BODY_MB).",
    415: "Send the body as JSON with Content-Type: application/json.",
}


def handle_http_exception(exc: HTTPException):
    if is_dashboard_request():
        return exc
    template = HTTP_MESSAGES.get(exc.code)
    limit = (current_app.config["MAX_CONTENT_LENGTH"] or 0) / (1024 * 1024)
    message = (template.format(method=request.method, path=request.path, limit=f"{limit:g}")
               if template else exc.description)
    # keep what the exception says about itself, such as 405's Allow header
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    return APIError(exc.code or 500, message, headers=headers).response()


def handle_api_error(exc: APIError):
    return exc.response()


def handle_unexpected(exc: Exception):
    request_id = str(uuid.uuid4())
    log.exception("unhandled error, request id %s", request_id)
    if is_dashboard_request():
        return f"Something went wrong (request id {request_id}).", 500
    return APIError(500, f"Internal error. Request id {request_id}.").response()


def init_app(app):
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(DataError, handle_unstorable_value)
    app.register_error_handler(IntegrityError, handle_conflict)


def handle_conflict(exc):
    """Two writers raced for the same unique name: the loser gets a 409, not a 500."""
    log.info("integrity error: %s", exc.__class__.__name__)
    if is_dashboard_request():
        return "That name is already taken; reload and try again.", 409
    return APIError(409, "This conflicts with an existing record (a name or id already in "
                         "use); change it and retry.").response()


def handle_database_unavailable(exc):
    log.warning("database unavailable: %s", exc.__class__.__name__)
    if is_dashboard_request():
        return "The database is busy; try again in a moment.", 503, {"Retry-After": "1"}
    return APIError(503, "The database is unavailable or busy; retry shortly.",
                    headers={"Retry-After": "1"}).response()


def handle_unstorable_value(exc):
    """A value the database refuses as data (a NUL byte, an out-of-range number): the caller's."""
    db.session.rollback()
    log.info("value refused by the database: %s", exc.orig.__class__.__name__)
    if is_dashboard_request():
        return "A value contains characters or numbers that cannot be stored.", 400
    return APIError(400, "A value in the request contains characters or numbers that cannot "
                         "be stored or looked up.").response()
