"""Calls that pass through more than one Teamgate. Every upstream call names the Teamgates it has
passed in X-Teamgate-Hop (this one first), and every proxy answer names the Teamgate that gave it
in x-teamgate-instance, so a model whose api_base leads back into Teamgate (its own address under
another name, or another Teamgate whose model leads back) ends after one hop instead of calling
itself until something gives way.

The rule: a call may arrive from at most one other Teamgate. One that arrives naming this
Teamgate, or naming two or more, is refused at once with 508; one that arrives from one other
Teamgate is served, and sent on without retries, so that retries never multiply across hops."""
import re

from flask import current_app, request

from webapp.errors import APIError

HOP_HEADER = "X-Teamgate-Hop"
HOP_ENVIRON = "HTTP_X_TEAMGATE_HOP"  # how WSGI servers hand the header to the app
INSTANCE_HEADER = "x-teamgate-instance"
MAX_EARLIER = 1  # other Teamgates a call may have passed before this one
# what an instance id may look like (this Teamgate's are 16 hex digits): a caller's header is
# sent on upstream, so nothing else is taken from it
INSTANCE_ID = re.compile(r"[0-9A-Za-z._-]{1,64}")


def instance_id() -> str:
    return current_app.config["TEAMGATE_INSTANCE_ID"]


def loop_error(message: str) -> APIError:
    return APIError(508, message, param="model", error_type="invalid_request_error")


def arrival() -> tuple[str, list[str]]:
    """This Teamgate's id and the Teamgates the call passed before it (the nearest first); a
    call that already passed this Teamgate, or more than one other, is refused."""
    own = instance_id()
    value = request.environ.get(HOP_ENVIRON)
    if not value:
        return own, []
    earlier = [part.strip() for part in value.split(",") if part.strip()]
    if not all(INSTANCE_ID.fullmatch(part) for part in earlier):
        raise APIError(400, f"{HOP_HEADER} must list Teamgate instance ids (letters, digits, "
                            "'.', '_' or '-', at most 64 each), separated by commas.")
    if own in earlier:
        raise loop_error("Loop detected: this call has already passed through this Teamgate. "
                         "The model's api_base leads back to Teamgate; point it at the "
                         "provider instead.")
    if len(earlier) > MAX_EARLIER:
        raise loop_error(f"Loop detected: this call has already passed through "
                         f"{len(earlier)} Teamgates; a call may pass through at most two.")
    return own, earlier


def onward(own: str, earlier: list[str]) -> str:
    """The hop header of the call this Teamgate sends upstream."""
    return ", ".join([own, *earlier]) if earlier else own


def check_answer(headers: dict, own: str):
    """Refuse an upstream answer that this Teamgate gave itself."""
    answered_by = headers.get(INSTANCE_HEADER)
    if answered_by and own in (part.strip() for part in answered_by.split(",")):
        raise loop_error("Loop detected: the model's api_base answered as this Teamgate "
                         "itself; point it at the provider instead.")


def name_answer(response):
    """after_request of the proxy routes: say which Teamgate answered."""
    response.headers[INSTANCE_HEADER] = instance_id()
    return response
