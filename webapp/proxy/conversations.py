"""What a Responses API call remembers, so that previous_response_id and /v1/responses/{id}
work: for a deployment that serves the Responses API itself (OpenAI, Azure), which deployment
made the response (its upstream keeps the conversation; a call that continues it goes there);
for a deployment reached through chat completions, the conversation itself, whose items are
joined before the input of the call that continues it. Kept for RESPONSES_TTL seconds
(webapp/services/response_store.py), for the team (or team-less key) that made it only."""
import json

from webapp.errors import APIError
from webapp.upstream import masking
from webapp.services import response_store
from webapp.services.response_store import Stored

# request fields a Response object echoes
ECHOED = ("instructions", "metadata", "parallel_tool_calls", "temperature", "top_p",
          "tool_choice", "tools", "text", "max_output_tokens", "previous_response_id", "user",
          "reasoning", "store")
ENDING = (b"response.completed", b"response.incomplete")


def not_found(response_id: str, param: str | None = None) -> APIError:
    return APIError(404, f"Response with id '{response_id}' not found.", param=param)


def items_of(value) -> list:
    """A call's `input` as a list of items, each with its type (a message may omit it)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [{"type": "message", **item} if isinstance(item, dict) and "type" not in item
            else item for item in value]


class Conversation:
    """One POST /v1/responses call's side of the store."""

    def __init__(self, principal, body: dict):
        self.keeper = response_store.keeper(principal)
        self.store = body.get("store") is not False
        self.previous = None
        previous_id = body.get("previous_response_id")
        if previous_id:
            self.previous = response_store.find(principal, previous_id)
            if self.previous is None:
                raise not_found(previous_id, "previous_response_id")
        self.input: list = []  # the whole conversation's input, for a kept response
        self.body = body
        self.target = None

    @property
    def pinned(self) -> str | None:
        """The deployment this call must go to: the one that holds the previous response."""
        if self.previous is not None and not self.previous.kept:
            return self.previous.deployment_id
        return None

    def prepare(self, body: dict, target, translated: bool) -> dict:
        """The body to send: a kept conversation's items joined before the input."""
        self.target, self.translated = target, translated
        self.secret = masking.Secret.of(target)
        earlier = []
        if self.previous is not None and self.previous.kept:
            if self.previous.items is None:
                raise APIError(400, "The conversation of previous_response_id was too large "
                                    "for Teamgate to keep; send the whole input instead.",
                               param="previous_response_id")
            earlier = self.previous.items + list(
                (self.previous.response or {}).get("output") or [])
            if not translated:  # OpenAI would look the ids of Teamgate's items up
                earlier = [{k: v for k, v in item.items() if k != "id"} for item in earlier
                           if isinstance(item, dict)]
            body = {k: v for k, v in body.items() if k != "previous_response_id"}
        if earlier or translated:
            self.input = earlier + items_of(body["input"])
            body = {**body, "input": self.input}
        return body

    def _keep(self, response: dict):
        kept = self.translated
        self.keeper.keep(Stored(response["id"], self.target.deployment_id, self.body["model"],
                                kept=kept, response=response if kept else None,
                                items=self.input if kept else None))

    def answered(self, payload: dict):
        """A JSON answer in the Responses shape, the key masked (a translation's is completed
        here)."""
        if self.translated:
            payload.update({k: self.body[k] for k in ECHOED if self.body.get(k) is not None})
        if self.store and isinstance(payload.get("id"), str):
            self._keep(payload)

    def watch(self, events):
        """The stream, its response kept before the event that names it goes out (a client
        may ask for it the moment it reads the event)."""
        wanted = ENDING if self.translated else (b"response.created",)
        for block in events:
            if self.translated:  # its texts join the upstream's deltas: the key may form there
                block = masking.events(self.secret, block)
            if wanted and self.store and any(name in block for name in wanted):
                response = _lifecycle_response(block, wanted)
                if response is not None:
                    if self.translated:
                        response.update({k: self.body[k] for k in ECHOED
                                         if self.body.get(k) is not None})
                    self._keep(response)
                    wanted = ()
            yield block


def _lifecycle_response(block: bytes, wanted: tuple) -> dict | None:
    for line in block.split(b"\n"):
        if line.startswith(b"data:") and any(name in line for name in wanted):
            try:
                event = json.loads(line[5:])
            except (ValueError, RecursionError):
                continue
            response = event.get("response") if isinstance(event, dict) else None
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                return response
    return None


def conversation_for(operation: str, principal, body: dict) -> Conversation | None:
    return Conversation(principal, body) if operation == "responses" else None
