"""Bedrock's Converse API in OpenAI's chat shape: the request body, the answer, and the events
of ConverseStream (already unframed from the event stream) as chat.completion.chunk events."""
import json

from webapp.errors import APIError
from webapp.providers import openai_shape as shape

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                "tool_use": "tool_calls", "content_filtered": "content_filter",
                "guardrail_intervened": "content_filter"}
# ConverseStream exception events as HTTP statuses (a model that broke off is an upstream
# failure, though Bedrock answers it with 424)
STREAM_EXCEPTIONS = {"throttlingException": 429, "validationException": 400,
                     "serviceUnavailableException": 503, "internalServerException": 500,
                     "modelStreamErrorException": 502}


def _blocks(message: dict) -> list[dict]:
    blocks = []
    for part in shape.parts_of(message.get("content")):
        if part[0] == "text":
            blocks.append({"text": part[1]})
        else:
            fmt = part[1].split("/", 1)[1]
            blocks.append({"image": {"format": fmt, "source": {"bytes": part[2]}}})
    for call in message.get("tool_calls") or ():
        call_id, name, arguments = shape.tool_arguments(call)
        blocks.append({"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}})
    return blocks


def _tool_result(message: dict) -> dict:
    text = shape.text_of(message.get("content"), "A tool message's")
    return {"toolResult": {"toolUseId": message.get("tool_call_id") or "",
                           "content": [{"text": text}]}}


def _messages(messages: list) -> tuple[list, list]:
    """(system blocks, messages): consecutive turns of one role merged, as Converse requires
    user and assistant to alternate (tool results are user turns)."""
    system, turns = [], []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = shape.text_of(message.get("content"), "A system message's")
            if text:
                system.append({"text": text})
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role in ("user", "assistant"):
            blocks = _blocks(message)
        else:
            raise APIError(400, f"Unknown message role {role!s}.", param="messages")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _uses_tools(turns: list) -> bool:
    return any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])


def _tool_spec(function: dict) -> dict:
    spec = {"name": function.get("name") or ""}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["inputSchema"] = {"json": function.get("parameters")
                           or {"type": "object", "properties": {}}}
    return {"toolSpec": spec}


def _tool_config(body: dict, turns: list) -> dict | None:
    tools = [_tool_spec(t.get("function") or {}) for t in body.get("tools") or ()
             if t.get("type", "function") == "function"]
    if not tools:
        return None
    choice = body.get("tool_choice")
    if choice == "none":
        if _uses_tools(turns):
            raise APIError(400, "Bedrock has no tool_choice none while the conversation holds "
                                "tool calls; use auto.", param="tool_choice")
        return None
    config = {"tools": tools}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": (choice.get("function") or {}).get("name")}}
    return config


def request(body: dict) -> dict:
    """A Converse request body from an OpenAI chat body."""
    shape.refuse_unsupported(body, "Bedrock")
    if (body.get("response_format") or {}).get("type", "text") != "text":
        raise APIError(400, "Bedrock's Converse API has no response_format; describe the JSON "
                            "in the prompt or use a tool.", param="response_format")
    system, turns = _messages(body.get("messages") or [])
    payload: dict = {"messages": turns}
    if system:
        payload["system"] = system
    config = {"maxTokens": shape.max_tokens(body), "temperature": body.get("temperature"),
              "topP": body.get("top_p"), "stopSequences": shape.stop_list(body)}
    config = {k: v for k, v in config.items() if v is not None}
    if config:
        payload["inferenceConfig"] = config
    tool_config = _tool_config(body, turns)
    if tool_config:
        payload["toolConfig"] = tool_config
    return payload


def usage(raw: dict) -> dict:
    """Converse counts cached input apart from inputTokens; OpenAI counts it in the prompt."""
    read, write = raw.get("cacheReadInputTokens") or 0, raw.get("cacheWriteInputTokens") or 0
    return shape.usage((raw.get("inputTokens") or 0) + read + write,
                       raw.get("outputTokens") or 0, cached=read)


def response(payload: dict, model: str) -> dict:
    content = ((payload.get("output") or {}).get("message") or {}).get("content") or []
    texts, calls = [], []
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(shape.tool_call(len(calls), use.get("toolUseId", ""),
                                         use.get("name", ""), use.get("input") or {}))
    finish = STOP_REASONS.get(payload.get("stopReason"), "stop")
    return shape.completion(model, "".join(texts), calls, finish,
                            usage(payload.get("usage") or {}))


class StreamTranslator:
    """ConverseStream events in, OpenAI SSE events out; tool calls numbered in their order."""

    def __init__(self, model: str, outcome: shape.StreamOutcome, include_usage: bool):
        self.writer = shape.ChunkWriter(model)
        self.outcome, self.include_usage = outcome, include_usage
        self.tool_index: dict[int, int] = {}  # contentBlockIndex -> tool_calls index
        self.finished = False
        self.handlers = {"messageStart": self._message_start,
                         "contentBlockStart": self._block_start,
                         "contentBlockDelta": self._block_delta,
                         "messageStop": self._message_stop, "metadata": self._metadata}

    def event(self, kind: str, payload: dict) -> bytes | None:
        """One event's chunk; contentBlockStop and unknown kinds carry nothing to relay."""
        handler = self.handlers.get(kind)
        return handler(payload) if handler else None

    def _message_start(self, payload: dict) -> bytes:
        return self.writer.chunk({"content": ""})

    def _block_start(self, payload: dict) -> bytes | None:
        use = (payload.get("start") or {}).get("toolUse")
        if use is None:
            return None
        index = self.tool_index.setdefault(payload.get("contentBlockIndex", 0),
                                           len(self.tool_index))
        return self.writer.chunk({"tool_calls": [shape.tool_call(
            index, use.get("toolUseId", ""), use.get("name", ""), "")]})

    def _block_delta(self, payload: dict) -> bytes | None:
        delta = payload.get("delta") or {}
        if "text" in delta:
            return self.writer.chunk({"content": delta["text"]})
        if "toolUse" in delta:
            index = self.tool_index.get(payload.get("contentBlockIndex", 0), 0)
            return self.writer.chunk({"tool_calls": [{
                "index": index, "function": {"arguments": delta["toolUse"].get("input", "")}}]})
        return None

    def _message_stop(self, payload: dict) -> bytes:
        self.finished = True
        return self.writer.chunk({}, STOP_REASONS.get(payload.get("stopReason"), "stop"))

    def _metadata(self, payload: dict) -> bytes | None:
        counts = usage(payload.get("usage") or {})
        self.outcome.take_usage(counts)
        return self.writer.usage_chunk(counts) if self.include_usage else None

    def exception(self, kind: str, payload: bytes) -> APIError:
        try:
            message = json.loads(payload).get("message") or ""
        except (ValueError, AttributeError):
            message = ""
        return shape.stream_failure(STREAM_EXCEPTIONS.get(kind, 502),
                                    f"{kind}: {message}" if message else kind)
