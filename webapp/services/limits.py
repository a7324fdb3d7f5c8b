"""Team and key limits as LiteLLM names them: stored per row; rpm_limit, tpm_limit,
max_parallel_requests and the budgets (services/budgets) enforced on every proxied call, counted
in a store that all workers share (limit_stores: a SQLite file on one machine, Redis across
instances), all of a call's in one atomic step."""
import itertools
import json
import logging
import os
import threading
import time
from pathlib import Path

from flask import current_app, request

from webapp.errors import APIError
from webapp.services import budgets, prices, spend
from webapp.services.limit_stores import Check, RedisStore, SQLiteStore, Unavailable
from webapp.services.schemas import LIMITS, TEAM_MEMBER_BUDGET

LIMIT_FIELDS = (*LIMITS, *TEAM_MEMBER_BUDGET)  # a key's body cannot carry the team's fields
log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0  # after a failed store call, the next one waits this long before trying
CHARS_PER_TOKEN = 4  # the rough size of a prompt before the upstream counts it
TOKENS_PER_MESSAGE = 4


def from_body(body: dict) -> dict:
    """The limits a create request sets."""
    return {k: body[k] for k in LIMIT_FIELDS if body.get(k) is not None}


def merged(current: dict | None, body: dict) -> dict:
    """Stored limits after an update: fields sent replace, null clears, omitted stay."""
    limits = dict(current or {})
    limits.update({k: body[k] for k in LIMIT_FIELDS if k in body})
    return {k: v for k, v in limits.items() if v is not None}


def _text_size(value) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):  # content parts, Responses input items, embeddings inputs
        return sum(_text_size(_item_text(item) if isinstance(item, dict) else item)
                   for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return CHARS_PER_TOKEN  # a pre-tokenised input: one token each
    return 0


def _item_text(item: dict):
    for name in ("text", "content", "output", "arguments"):  # a part, message, tool call
        if item.get(name) is not None:
            return item[name]
    return None


def estimate_tokens(body: dict) -> int:
    """What a call is reserved under tpm_limit before it is made: its text's rough token count
    (4 characters a token; images and audio are not counted) plus the completion tokens it
    allows."""
    return sum(estimate_parts(body))


def estimate_parts(body: dict) -> tuple[int, int]:
    """(prompt, completion) of estimate_tokens."""
    completion = (body.get("max_completion_tokens") or body.get("max_tokens")
                  or body.get("max_output_tokens") or 0)
    if not isinstance(completion, int) or isinstance(completion, bool) or completion < 0:
        completion = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        chars = sum(_text_size(m.get("content")) for m in messages if isinstance(m, dict))
        prompt = chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages)
    else:
        # embeddings, speech, moderations and Responses take an input (Responses also
        # instructions); completions and images a prompt
        text = body.get("input") if "input" in body else body.get("prompt")
        prompt = (_text_size(text) + _text_size(body.get("instructions"))) // CHARS_PER_TOKEN
    return prompt, completion


def _request_body() -> dict:
    # the call path parsed it already; the raw bytes are cached unless it came chunked
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_ticket_prefix = (None, "")  # (pid, random prefix)
_ticket_counter = itertools.count()


def _ticket_id() -> str:
    """A ticket name no other call of any process or instance has: a random prefix drawn once
    per process and a count (os.urandom per call is a system call each)."""
    global _ticket_prefix
    if _ticket_prefix[0] != os.getpid():  # a forked worker draws its own
        _ticket_prefix = (os.getpid(), os.urandom(8).hex())
    return f"{_ticket_prefix[1]}{next(_ticket_counter)}"


class Gate:
    """Admission for rpm_limit (requests in the current minute), tpm_limit (tokens in the
    current minute, reserved before the call and settled after) and max_parallel_requests
    (calls in flight, streams until they end), for keys and teams."""

    def __init__(self, store, on_failure: str):
        self.store, self.on_failure = store, on_failure
        self._down_until = 0.0  # while the store failed lately: when to try it again
        self._lock = threading.Lock()

    def enter(self, subjects: list[tuple[str, str, dict]], body: dict | None = None,
              holds: tuple = (), amount: float = 0.0) -> "Ticket":
        """Admit a call for every (kind, counter, limits) subject (or raise a 429 APIError that
        names the kind) and hold `amount` (its estimated cost) on every budget hold (or raise
        LiteLLM's 400). Returns the ticket to settle when the call is over (a stream: when it
        ends)."""
        checks, kinds = [], []
        for kind, subject, limits in subjects:
            if not limits:  # most callers: nothing to count, no store to ask
                continue
            rpm, parallel = limits.get("rpm_limit"), limits.get("max_parallel_requests")
            tpm = limits.get("tpm_limit")
            if rpm is None and parallel is None and tpm is None:
                continue
            checks.append(Check(subject, rpm, parallel, tpm))
            kinds.append(kind)
        if not checks and not holds:
            return NO_TICKET
        estimate = 0
        if any(check.tpm is not None for check in checks):
            estimate = estimate_tokens(_request_body() if body is None else body)
            checks = [Check(c.subject, c.rpm, c.parallel, c.tpm, estimate) for c in checks]
            for kind, check in zip(kinds, checks):
                if check.tpm is not None and estimate > check.tpm:
                    raise APIError(429, f"This call would use about {estimate} tokens, more "
                                        f"than the limit of this {kind} ({check.tpm} tokens "
                                        "per minute).")
        ticket_id = _ticket_id()
        window, refusal = self._ask(self.store.admit, checks, ticket_id, holds, amount)
        if window is None:  # the store is unreachable and the setting says fail open
            return NO_TICKET
        if refusal is not None and refusal.limit == "budget":
            raise budgets.exceeded(refusal.spent, holds[refusal.index].max_budget,
                                   refusal.held)
        if refusal is not None:
            raise _refused(kinds[refusal.index], checks[refusal.index], refusal)
        return Ticket(self, checks, ticket_id, window, estimate, holds, amount)

    def stop(self):
        """A worker's graceful stop: the token corrections and budget settlements still waiting
        for a trip go now."""
        try:
            self.store.flush()
        except Unavailable as error:
            log.warning("limits: token corrections and settlements lost at exit (%s)", error)

    def _ask(self, operation, *args):
        """operation(*args), with the store's failures handled as LIMITS_ON_REDIS_FAILURE says:
        open lets the call through uncounted, closed refuses it with a 503."""
        try:
            if time.monotonic() < self._down_until:
                raise Unavailable("failed lately")
            result = operation(*args)
        except Unavailable as error:
            self._failed(error)
            if self.on_failure == "closed" and operation == self.store.admit:
                raise APIError(503, "Teamgate cannot check this caller's limits right now; "
                                    "try again shortly.", headers={"Retry-After": "1"}) from None
            return None, None
        if self._down_until:
            with self._lock:
                if self._down_until:
                    self._down_until = 0.0
                    log.warning("limits: the counter store answers again")
        return result

    def _failed(self, error):
        with self._lock:
            if not self._down_until:  # once per episode
                log.error("limits: the counter store is unreachable (%s); calls are %s until it "
                          "answers", error, "refused" if self.on_failure == "closed"
                          else "admitted uncounted")
            self._down_until = time.monotonic() + RETRY_SECONDS


def _refused(kind: str, check: Check, refusal) -> APIError:
    headers = {"Retry-After": str(refusal.retry_after)}
    if refusal.limit == "rpm":
        return APIError(429, f"Rate limit of this {kind} reached ({check.rpm} requests per "
                             "minute).", headers=headers)
    if refusal.limit == "tpm":
        return APIError(429, f"Rate limit of this {kind} reached ({check.tpm} tokens per "
                             "minute).", headers=headers)
    return APIError(429, f"This {kind} already has {check.parallel} calls in flight.",
                    headers=headers)


class Ticket:
    """A call's place under the limits: its parallel slots and its reserved tokens."""

    def __init__(self, gate: Gate | None, checks: list, ticket_id: str = "", window: int = 0,
                 reserved: int = 0, holds: tuple = (), held: float = 0.0):
        self._gate, self._checks, self._holds, self._held = gate, checks, holds, held
        self._id, self._window, self._reserved = ticket_id, window, reserved

    def settle(self, prompt_tokens: int | None, completion_tokens: int | None,
               cost: float | None = None):
        """The call is over and used these tokens at this cost: its minute counts them instead
        of the reservation, its budgets its cost instead of their holds, and its slots are
        given back. Only the first settle or release counts."""
        checks, holds, self._checks, self._holds = self._checks, self._holds, [], ()
        if not checks and not holds:
            return
        tokens = 0
        if prompt_tokens is not None or completion_tokens is not None:
            tokens = (prompt_tokens or 0) + (completion_tokens or 0) - self._reserved
        # a call with no slot, no hold and no tokens to correct has nothing to give back
        if holds or any(check.parallel is not None or (tokens and check.tpm is not None)
                        for check in checks):
            self._gate._ask(self._gate.store.release, checks, self._id, self._window, tokens,
                            holds, cost or 0.0, self._held)

    def release(self, prompt_tokens: int | None = None, completion_tokens: int | None = None):
        """Give back the call's slots and holds; without token counts its reservation stays
        counted, and its budgets count nothing."""
        self.settle(prompt_tokens, completion_tokens)


NO_TICKET = Ticket(None, [])


def _per_model(kind: str, subject: str, limits: dict, model) -> list:
    """LiteLLM's model_rpm_limit and model_tpm_limit of a key or team: its own minute for calls
    to one model name (as the caller sends it), beside its limits for every model."""
    if not limits or not isinstance(model, str):
        return []
    rpm = (limits.get("model_rpm_limit") or {}).get(model)
    tpm = (limits.get("model_tpm_limit") or {}).get(model)
    if rpm is None and tpm is None:
        return []
    return [(f"{kind} for model {model}", f"{kind}-model:{subject}:{model}",
             {"rpm_limit": rpm, "tpm_limit": tpm})]


def estimate_cost(body: dict | None, deployment_id: str | None) -> float:
    """What a call to this deployment is held at under its budgets before it is made: the
    estimate_parts at the deployment's prices (0 for an unpriced deployment)."""
    priced = prices.for_deployment(deployment_id).prices
    if priced is None:
        return 0.0
    return priced.cost(*estimate_parts(_request_body() if body is None else body))


def admit(principal, body: dict | None = None, deployment_id: str | None = None) -> Ticket:
    """Admit one proxied call of this caller to this deployment (429 when over a limit, 400
    when over a budget); settle() or release() the ticket after. body: the call's parsed body
    (read again from the request when not given)."""
    holds = budgets.check(principal)
    model = body.get("model") if body else None
    subjects = []
    if principal.key_token:
        subjects.append(("key", f"key:{principal.key_token}", principal.key_limits))
        subjects += _per_model("key", principal.key_token, principal.key_limits, model)
    if principal.team_id:
        team = budgets.team_limits(principal.team_id)
        subjects.append(("team", f"team:{principal.team_id}", team))
        subjects += _per_model("team", principal.team_id, team, model)
        if principal.user_id and principal.key_token and team:
            member = spend.member_id(principal.team_id, principal.user_id)
            subjects.append(("team member", f"member:{member}",
                             {"rpm_limit": team.get("team_member_rpm_limit"),
                              "tpm_limit": team.get("team_member_tpm_limit")}))
    amount = estimate_cost(body, deployment_id) if holds else 0.0
    return current_app.extensions["teamgate.limits"].enter(subjects, body, holds, amount)


def init_app(app):
    config = app.config
    if config.get("REDIS_URL"):
        store = RedisStore(config["REDIS_URL"], config["LIMITS_SLOT_SECONDS"],
                           config["LIMITS_REDIS_TIMEOUT"])
    else:
        path = config.get("LIMITS_DB") or str(Path(app.instance_path) / "limits.db")
        store = SQLiteStore(path, config["LIMITS_SLOT_SECONDS"])
    app.extensions["teamgate.limits"] = Gate(store, config["LIMITS_ON_REDIS_FAILURE"])
