"""Anthropic's Messages API in terms of OpenAI's chat completions, both ways: for a /v1/messages
call to a deployment that speaks chat (OpenAI, Azure, OpenAI-compatible servers, and through
their own translations Bedrock and Vertex).

Kept: system (string or text blocks), text, images (base64 and URL sources), tools, tool_use and
tool_result turns, tool_choice, stop sequences, temperature, top_p, metadata.user_id, streaming
with usage. Refused with a 400 naming it: what chat has no way to carry (documents, a
`thinking` budget is dropped, as chat models reason on their own terms; thinking blocks of
earlier turns are left out, since only Anthropic can verify their signatures)."""
import json
import uuid

from webapp.errors import APIError
from webapp.operations.base import ChatStreamTranslation

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


# Anthropic's error types (https://docs.anthropic.com/en/api/errors) by HTTP status
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 529: "overloaded_error"}


def anthropic_error(status: int, message: str) -> dict:
    error_type = ERROR_TYPES.get(status, "api_error" if status >= 500 else
                                 "invalid_request_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _refuse(message: str, param: str = "messages"):
    raise APIError(400, message, param=param)


def _text(content, where: str) -> str:
    """A system prompt or tool result given as a string or as text blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        _refuse(f"{where} must be a string or a list of content blocks.")
    texts = []
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "text":
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            _refuse(f"{where}: content blocks of type {kind} cannot be sent to this "
                    f"deployment; send text blocks.")
        texts.append(block.get("text") or "")
    return "\n".join(texts)


def _image(block: dict) -> dict:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        _refuse("An image block needs a base64 or url source.")
    return {"type": "image_url", "image_url": {"url": url}}


def _turns(message: dict) -> list[dict]:
    """One Anthropic message as chat messages: tool results become `tool` messages, tool_use
    blocks the assistant's tool_calls."""
    role = message.get("role")
    if role not in ("user", "assistant"):
        _refuse(f"messages: role must be user or assistant, not {role!r}.")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        _refuse("messages: content must be a string or a list of content blocks.")
    parts, calls, results = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append(_image(block))
        elif kind == "tool_use" and role == "assistant":
            calls.append({"id": block.get("id") or "", "type": "function",
                          "function": {"name": block.get("name") or "",
                                       "arguments": json.dumps(block.get("input") or {})}})
        elif kind == "tool_result" and role == "user":
            text = _text(block.get("content"), "tool_result content")
            if block.get("is_error"):
                text = "Error: " + text
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id") or "",
                            "content": text})
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue
        else:
            _refuse(f"messages: content blocks of type {kind} cannot be sent to this "
                    f"deployment (it speaks chat completions).")
    turns = list(results)  # a tool's answer follows the assistant's call directly
    if role == "assistant":
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        turn = {"role": "assistant", "content": text or None}
        if calls:
            turn["tool_calls"] = calls
        if text or calls:
            turns.append(turn)
    elif parts:
        turns.append({"role": "user", "content": parts})
    return turns


def _tool_choice(choice, body: dict) -> dict:
    fields = {}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        fields["tool_choice"] = "auto"
    elif kind == "any":
        fields["tool_choice"] = "required"
    elif kind == "none":
        fields["tool_choice"] = "none"
    elif kind == "tool":
        fields["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice is not None:
        _refuse("tool_choice: type must be auto, any, tool or none.", "tool_choice")
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") and body.get("tools"):
        fields["parallel_tool_calls"] = False
    return fields


def chat_body(body: dict) -> dict:
    """A Messages request as a chat completions request."""
    messages = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"], "system")})
    for message in body["messages"]:
        if not isinstance(message, dict):
            _refuse("messages: each message must be an object.")
        messages.extend(_turns(message))
    chat = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p"):
        if name in body:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id") if isinstance(
        body.get("metadata"), dict) else None
    if user:
        chat["user"] = user
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            _refuse("tools: must be a list.", "tools")
        chat["tools"] = []
        for tool in tools:
            if not isinstance(tool, dict) or "input_schema" not in tool:
                _refuse("tools: this deployment takes custom tools only (name, description, "
                        "input_schema); Anthropic's server tools need an Anthropic deployment.",
                        "tools")
            function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
            if tool.get("description"):
                function["description"] = tool["description"]
            chat["tools"].append({"type": "function", "function": function})
    chat.update(_tool_choice(body.get("tool_choice"), body))
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def new_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def _usage(usage) -> dict:
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage.get("prompt_tokens") or 0
    details = usage.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {"input_tokens": prompt - cached, "output_tokens": usage.get("completion_tokens") or 0,
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


def _arguments(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_value": value}


def message(payload: dict, model: str) -> dict:
    """A chat completion as a Messages answer."""
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(
        choices[0], dict) else {}
    answer = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = []
    if isinstance(answer.get("content"), str) and answer["content"]:
        content.append({"type": "text", "text": answer["content"]})
    for call in answer.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or "toolu_" + uuid.uuid4().hex,
                        "name": function.get("name") or "",
                        "input": _arguments(function.get("arguments"))})
    return {"id": new_id(), "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": STOP_REASONS.get(choice.get("finish_reason"), "end_turn"),
            "stop_sequence": None, "usage": _usage(payload.get("usage"))}


def _event(kind: str, payload: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + json.dumps(
        {"type": kind, **payload}).encode() + b"\n\n"


class MessageStream(ChatStreamTranslation):
    """OpenAI chat chunks (blocks of whole SSE events) as Anthropic's event sequence:
    message_start, per content block content_block_start / _delta / _stop (text_delta,
    input_json_delta), message_delta with the stop reason and usage, message_stop. A failure
    the relay turned into an error event becomes Anthropic's `error` event."""

    def __init__(self, model: str):
        self.model = model
        self.index = -1  # the content block open now
        self.open_kind = None  # "text" or the chat tool call's index
        self.tool_blocks = {}  # chat tool-call index -> content block index
        self.stop_reason = "end_turn"
        self.usage = None
        self.started = False

    def _start(self) -> bytes:
        self.started = True
        return _event("message_start", {"message": {
            "id": new_id(), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}})

    def _close_block(self) -> bytes:
        if self.open_kind is None:
            return b""
        self.open_kind = None
        return _event("content_block_stop", {"index": self.index})

    def _open(self, kind, block: dict) -> bytes:
        out = self._close_block()
        self.index += 1
        self.open_kind = kind
        return out + _event("content_block_start", {"index": self.index, "content_block": block})

    def chunk(self, chunk: dict) -> bytes:
        out = b"" if self.started else self._start()
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.open_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += _event("content_block_delta", {"index": self.index, "delta": {
                    "type": "text_delta", "text": text}})
            for call in delta.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                position = call.get("index", 0)
                function = call.get("function") if isinstance(call.get("function"), dict) else {}
                if position not in self.tool_blocks:
                    out += self._open(("tool", position), {
                        "type": "tool_use", "id": call.get("id") or "toolu_" + uuid.uuid4().hex,
                        "name": function.get("name") or "", "input": {}})
                    self.tool_blocks[position] = self.index
                arguments = function.get("arguments")
                if isinstance(arguments, str) and arguments:
                    out += _event("content_block_delta", {
                        "index": self.tool_blocks[position],
                        "delta": {"type": "input_json_delta", "partial_json": arguments}})
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def closing(self) -> bytes:
        out = (b"" if self.started else self._start()) + self._close_block()
        usage = _usage(self.usage)
        return out + _event("message_delta", {
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
            "usage": usage}) + _event("message_stop", {})

    def failure(self, payload: dict) -> bytes:
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        try:
            status = int(error.get("code"))
        except (TypeError, ValueError):
            status = 502
        body = anthropic_error(status, str(error.get("message") or "Upstream failure."))
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
