"""What an operation (one kind of proxied call: chat, embeddings, messages, ...) declares: its
public paths, what its body must hold, the name the request log gives it, how usage is read from
its answer and its stream, how its stream ends and how its errors look.

An operation a provider does not offer can still reach it through another it does: `via` names
that one, and `to_via` / `from_via` / `from_via_stream` translate the call there and its answer
back (Anthropic's Messages API on an OpenAI deployment goes via chat completions, say)."""
import json
from collections.abc import Iterable, Iterator

from flask import current_app

from webapp.errors import APIError

DONE = b"data: [DONE]"
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "cache_read_tokens",
                "cache_creation_tokens")


class Operation:
    name = ""  # what providers list in their `operations`
    paths: tuple[str, ...] = ()  # every public path that serves it, /v1 first
    summary = ""
    body_schema: dict = {}  # for /openapi.json; check() is what enforces it
    stream_end: bytes | None = DONE  # the last event of a stream, sent if the upstream did not
    via: str | None = None  # the operation a provider without this one is called through
    forwarded_headers: tuple[str, ...] = ()  # the caller's headers its upstream receives too
    # the model_info.mode (LiteLLM's names) a deployment must have to serve it; empty: any
    # deployment whose mode no other operation claims
    modes: tuple[str, ...] = ()
    # where Azure OpenAI's clients call it: /openai/deployments/{name}/<deployment_path>
    deployment_path: str | None = None
    multipart = False  # the body is multipart/form-data (an upload), not JSON
    raw_answer = False  # the answer may be bytes that are not JSON (audio, text), relayed as is
    audio_answer = False  # the answer is audio: always relayed as it arrives, never read whole

    @property
    def log_route(self) -> str:
        """The route the request log records: the path without its /v1 prefix."""
        return self.paths[-1]

    @property
    def endpoint(self) -> str:
        """The Flask endpoint and OpenAPI operation name: chat_completions, embeddings."""
        return self.log_route.strip("/").replace("/", "_")

    def check(self, body: dict):
        """Refuse a body this operation cannot take (400 naming the field); the model field is
        checked for every operation by the call path."""

    # usage -------------------------------------------------------------------------------

    def usage(self, payload: dict) -> dict | None:
        """Token counts (USAGE_FIELDS) from an answer or one stream event in this operation's
        shape; None when it carries none. OpenAI's shape here."""
        usage = payload.get("usage") if isinstance(payload, dict) else None
        if not isinstance(usage, dict):
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return {"prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"),
                "cache_read_tokens": cached,
                # LiteLLM's name for cache writes in OpenAI's usage (Anthropic deployments)
                "cache_creation_tokens": usage.get("cache_creation_input_tokens")}

    def stream_usage(self, block: bytes) -> dict | None:
        """Token counts from a block of whole SSE events (only blocks that mention "usage" are
        given); later counts in the stream update earlier ones."""
        found = None
        for line in block.split(b"\n"):
            if b'"usage"' in line and line.startswith(b"data:"):
                try:
                    counts = self.usage(json.loads(line[5:]))
                except (ValueError, RecursionError):
                    continue
                if counts:
                    found = {**(found or {}), **{k: v for k, v in counts.items()
                                                 if v is not None}}
        return found

    # errors ------------------------------------------------------------------------------

    error_schema: dict | None = None  # for /openapi.json when error_body is not the contract's

    def error_body(self, error: APIError) -> dict:
        """An error as this operation's clients read it: the contract's shape by default."""
        return error.body()

    def error_event(self, error: APIError) -> bytes:
        """A failure after a stream began, as one event of this operation's stream."""
        return b"data: " + json.dumps(self.error_body(error)).encode() + b"\n\n"

    # reaching a provider through `via` ---------------------------------------------------

    def to_via(self, body: dict) -> dict:
        """The caller's body as a body of the `via` operation."""
        raise NotImplementedError

    def from_via(self, payload: dict, model: str) -> dict:
        """The `via` operation's JSON answer in this operation's shape."""
        raise NotImplementedError

    def from_via_stream(self, blocks: Iterable[bytes], model: str) -> Iterator[bytes]:
        """The `via` operation's SSE (blocks of whole events, its usage already read and its
        failure already an error event) as this operation's SSE."""
        raise NotImplementedError


def limit(name: str) -> int:
    return current_app.config[name]


def require_messages(body: dict):
    """A non-empty list of at most MAX_MESSAGES messages, as chat and the Messages API take."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty list.", param="messages")
    if len(messages) > limit("MAX_MESSAGES"):
        raise APIError(400, f"Too many messages (at most {limit('MAX_MESSAGES')}).",
                       param="messages")


def require(body: dict, field: str, message: str | None = None):
    if field not in body:
        raise APIError(400, message or f"Missing required field: {field}.", param=field)


def _chat_chunks(block: bytes):
    """The chunks of a block of chat-completion events, as dicts, and None for `[DONE]`. Lines
    that are not `data:` or not a JSON object are left out."""
    for line in block.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            yield None
            continue
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if isinstance(chunk, dict):
            yield chunk


class ChatStreamTranslation:
    """A chat completions stream told as another operation's events (the Messages API's, the
    Responses API's). events() reads blocks of whole chat SSE events and yields the
    subclass's bytes: opening() first, chunk() for each chat chunk, failure() for an error
    event the relay made, closing() at `[DONE]` or when the upstream stopped without it.
    Nothing is read after a failure or the closing."""
    ended = False

    def opening(self) -> bytes:
        return b""

    def chunk(self, chunk: dict) -> bytes:
        raise NotImplementedError

    def failure(self, payload: dict) -> bytes:
        raise NotImplementedError

    def closing(self) -> bytes:
        raise NotImplementedError

    def events(self, blocks):
        opening = self.opening()
        if opening:
            yield opening
        for block in blocks:
            out = b""
            for chunk in _chat_chunks(block):
                if self.ended:
                    break
                if chunk is None or "error" in chunk:
                    self.ended = True
                    out += self.closing() if chunk is None else self.failure(chunk)
                else:
                    out += self.chunk(chunk)
            if out:
                yield out
        if not self.ended:
            self.ended = True
            yield self.closing()
