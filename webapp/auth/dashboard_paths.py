"""Which requests belong to the dashboard: the one place that knows its URL prefix. Those get the
session cookie, HTML errors and the browser's security headers; every other path is a JSON or
proxy route that authenticates by Bearer key."""
from flask import request

PREFIX = "/ui"


def is_dashboard_path(path: str) -> bool:
    # "/" only redirects to the dashboard's home
    return path in ("/", PREFIX) or path.startswith(PREFIX + "/")


def is_dashboard_request() -> bool:
    return is_dashboard_path(request.path)
