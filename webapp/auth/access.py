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


def declare(level: str):
    """Mark a view with its access level and check it before the view runs."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level}")

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if level != PUBLIC:
                g.principal = authenticate_bearer()
                if level == ADMIN and not g.principal.is_admin:
                    raise APIError(403, "Only the proxy admin may call this route.")
            return view(*args, **kwargs)

        wrapper.access = level
        return wrapper

    return decorator
