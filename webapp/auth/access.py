"""Every route declares who may call it; the declaration is also what enforces it."""
from functools import wraps

from flask import g

from webapp.auth.bearer import authenticate_bearer
from webapp.errors import APIError

# who a JSON route admits
PUBLIC = "public"
ANY_KEY = "any_key"  # the master key or any valid virtual key (finer rules in services)
ADMIN = "admin"

LEVELS = (PUBLIC, ANY_KEY, ADMIN)


def guard(level: str, check):
    """Mark a view with its access level and run check(level, view_kwargs) before it; whatever
    the check returns other than None (a redirect, say) is answered instead of the view."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            refusal = check(level, kwargs)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        wrapper.access = level
        return wrapper

    return decorator


def _check_bearer(level: str, _kwargs: dict):
    if level != PUBLIC:
        g.principal = authenticate_bearer()
        if level == ADMIN and not g.principal.is_admin:
            raise APIError(403, "Only the proxy admin may call this route.")


def declare(level: str):
    """Who may call a JSON route: PUBLIC, ANY_KEY (finer rules in the services) or ADMIN."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level}")
    return guard(level, _check_bearer)
