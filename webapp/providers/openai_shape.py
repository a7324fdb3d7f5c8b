"""OpenAI's chat and embeddings shapes, for providers whose upstream speaks another dialect:
reading a caller's messages (text, images, tool calls) and writing answers, stream chunks and
embeddings lists as OpenAI clients expect them."""
import json
import re
import time
import uuid
from dataclasses import dataclass

from webapp.errors import APIError
from webapp.upstream import failures


@dataclass
class StreamOutcome:
    """What a translated stream learned on the way, for the request log."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cache_creation_tokens: int | None = None  # prompt tokens written to a cache (Anthropic's)
    error: APIError | None = None
    line_limit: int = 8 * 1024 * 1024  # the longest event line taken (the answer's own limit)

    def take_usage(self, usage: dict):
        self.prompt_tokens = usage.get("prompt_tokens")
        self.completion_tokens = usage.get("completion_tokens")
        self.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")


# every chunk of a stream asked for usage carries "usage": null until the usage-only chunk
USAGE_NULLS = (b',"usage":null', b', "usage": null', b'"usage":null,', b'"usage": null, ')
EVENT_END = re.compile(rb"\r?\n\r?\n")


def asks_stream_usage(body: dict | None) -> bool:
    """Whether a chat stream's caller asked for the usage chunk (stream_options.include_usage)."""
    options = (body or {}).get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def with_stream_usage(body: dict, takes: bool) -> dict:
    """A chat stream's body as sent upstream: asking for usage where the upstream takes
    stream_options, without stream_options where it refuses them (Mistral, Azure before
    2024-08-01), which would otherwise answer 400 or 422."""
    if body.get("stream") is not True:
        return body
    if not takes:
        return {k: v for k, v in body.items() if k != "stream_options"}
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    return {**body, "stream_options": {**options, "include_usage": True}}


def reports_usage(block: bytes) -> bool:
    """Whether a block that mentions "usage" has counts in it, not only "usage": null."""
    return block.count(b'"usage"') > (block.count(b'"usage":null')
                                       + block.count(b'"usage": null'))


def deltas(block: bytes) -> int:
    """The deltas with something in them in a block of events (a cut-short stream's estimate
    of its completion: OpenAI's streams carry about a token each)."""
    count = block.count(b'"delta"')
    if count:
        count -= block.count(b'"delta":{}') + block.count(b'"delta": {}')
    return count


def _usage_only(event: bytes) -> bool:
    for line in event.splitlines():
        if line.startswith(b"data:") and b'"usage"' in line:
            try:
                payload = json.loads(line[5:])
            except (ValueError, RecursionError):
                return False
            return (isinstance(payload, dict) and payload.get("choices") == []
                    and bool(payload.get("usage")))
    return False


def without_usage(block: bytes) -> bytes:
    """A block of whole chat.completion.chunk events as a caller that did not ask for usage
    would have had it: no `"usage": null` in each chunk, no usage-only chunk at the end. Each
    byte is looked at a bounded number of times, however the events are cut."""
    for null in USAGE_NULLS:
        if null in block:
            block = block.replace(null, b"")
    if b'"usage"' not in block:
        return block
    kept, start = [], 0
    for end in EVENT_END.finditer(block):  # one pass: a long event is not searched again
        event = block[start:end.end()]
        if b'"usage"' not in event or not _usage_only(event):
            kept.append(event)
        start = end.end()
    kept.append(block[start:])
    return b"".join(kept)


IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def refuse_unsupported(body: dict, provider: str):
    """Fields whose meaning the translation cannot keep are refused rather than dropped."""
    if body.get("n") not in (None, 1):
        raise APIError(400, f"{provider} deployments answer one choice per call; remove n.",
                       param="n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise APIError(400, f"{provider} deployments do not return logprobs.", param="logprobs")


def stop_list(body: dict) -> list[str] | None:
    stop = body.get("stop")
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def max_tokens(body: dict):
    return body.get("max_completion_tokens") or body.get("max_tokens")


def text_of(content, where: str) -> str:
    """A system or tool message's content (a string or a list of text parts) as one string."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise APIError(400, f"{where} content may hold text parts only.", param="messages")
        texts.append(part.get("text") or "")
    return "\n".join(texts)


def data_url(url: str) -> tuple[str, str]:
    """(mime type, base64 data) of a `data:` image URL; a web URL is refused, not fetched."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise APIError(400, "Images must be sent inline as data: URLs "
                            "(data:image/png;base64,...); Teamgate does not fetch image URLs.",
                       param="messages")
    head, comma, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not comma or encoding != "base64" or mime not in IMAGE_TYPES:
        raise APIError(400, f"An image data: URL must be base64 and one of "
                            f"{', '.join(IMAGE_TYPES)}.", param="messages")
    return mime, data


def parts_of(content):
    """A user or assistant message's content as ("text", str) and ("image", mime, b64)."""
    if content is None:
        return
    if isinstance(content, str):
        if content:
            yield ("text", content)
        return
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                yield ("text", part["text"])
        elif kind == "image_url":
            image = part.get("image_url")
            yield ("image", *data_url(image.get("url") if isinstance(image, dict) else image))
        else:
            raise APIError(400, f"Content parts of type {kind!s} are not supported by this "
                                "deployment; send text and image_url parts.", param="messages")


def tool_arguments(call: dict) -> tuple[str, str, dict]:
    """(id, name, arguments) of an assistant's tool call; arguments must be a JSON object."""
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except (TypeError, ValueError):
        arguments = None
    if not isinstance(arguments, dict):
        raise APIError(400, "A tool call's function.arguments must be a JSON object string.",
                       param="messages")
    return call.get("id") or "", function.get("name") or "", arguments


def tool_call(index: int, call_id: str, name: str, arguments) -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"index": index, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": text}}


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def usage(prompt: int, completion: int, cached: int | None = None,
          reasoning: int | None = None) -> dict:
    result = {"prompt_tokens": prompt, "completion_tokens": completion,
              "total_tokens": prompt + completion}
    if cached:
        result["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return result


def completion(model: str, text: str | None, tool_calls: list, finish: str,
               usage_: dict, answer_id: str | None = None) -> dict:
    message = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                 for c in tool_calls]
    return {"id": answer_id or "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage_}


def event(payload) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


class _StreamedFailure:
    """A failure an upstream reported inside a stream, read by failures.from_status as if it
    had been the answer's status and body."""
    reason = ""

    def __init__(self, status: int, message: str):
        self.status, self.text, self.headers = status, message, {}

    def json(self) -> dict:
        return {"message": self.text}


def stream_failure(status: int, message: str) -> APIError:
    """The caller's error for a failure the upstream sent mid-stream, from the one mapper."""
    return failures.from_status(_StreamedFailure(status, message), None)


class ChunkWriter:
    """OpenAI chat.completion.chunk events of one stream: one id, one creation time."""

    def __init__(self, model: str):
        self.model = model
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.started = False

    def chunk(self, delta: dict, finish: str | None = None) -> bytes:
        if not self.started:
            delta, self.started = {"role": "assistant", **delta}, True
        return event({"id": self.id, "object": "chat.completion.chunk",
                      "created": self.created, "model": self.model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def usage_chunk(self, usage_: dict) -> bytes:
        return event({"id": self.id, "object": "chat.completion.chunk",
                      "created": self.created, "model": self.model, "choices": [],
                      "usage": usage_})


def embedding_inputs(body: dict) -> list[str]:
    value = body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if not isinstance(inputs, list) or not inputs or not all(
            isinstance(item, str) for item in inputs):
        raise APIError(400, "input must be a string or a non-empty list of strings for this "
                            "deployment (token arrays are not supported).", param="input")
    return inputs


def embeddings(model: str, vectors: list, prompt_tokens: int) -> dict:
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": vector}
                     for i, vector in enumerate(vectors)],
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}
