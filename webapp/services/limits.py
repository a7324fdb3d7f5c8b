"""Team and key limits (budget, rate, concurrency) as LiteLLM names them: stored per row."""
from webapp.services.schemas import LIMITS

LIMIT_FIELDS = tuple(LIMITS)


def from_body(body: dict) -> dict:
    """The limits a create request sets."""
    return {k: body[k] for k in LIMIT_FIELDS if body.get(k) is not None}


def merged(current: dict | None, body: dict) -> dict:
    """Stored limits after an update: fields sent replace, null clears, omitted stay."""
    limits = dict(current or {})
    limits.update({k: body[k] for k in LIMIT_FIELDS if k in body})
    return {k: v for k, v in limits.items() if v is not None}
