"""What both counter stores take and answer: a call's checks and budget holds, a refusal, and
the failure to ask."""
from dataclasses import dataclass

BUDGET_KEEP = 86400  # seconds a budget's counter outlives its last call


@dataclass(frozen=True)
class Check:
    """One subject's limits for one call (None: not limited) and its token reservation."""
    subject: str  # "key:<sha256>" or "team:<id>"
    rpm: int | None
    parallel: int | None
    tpm: int | None
    estimate: int = 0


@dataclass(frozen=True)
class Hold:
    """One budget a call falls under: its counter ("key:<sha256>:<period>", ...), its
    max_budget and the spend the database has for it (the counter's start when it has none)."""
    subject: str
    max_budget: float
    spend: float


@dataclass(frozen=True)
class Refusal:
    index: int  # which check (or, for "budget", which hold) refused
    limit: str  # "rpm", "tpm", "parallel" or "budget"
    retry_after: int
    spent: float = 0.0  # a refusing budget's spend
    held: float = 0.0  # and what its calls in flight hold


class Unavailable(Exception):
    """The store could not be asked (Redis down, file locked too long)."""
