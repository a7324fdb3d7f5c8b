"""OpenAI's chat completions in terms of Anthropic's Messages API: the request body, and the
answer back in OpenAI's shape. The stream is webapp/providers/anthropic_stream.py's.

Kept: system and developer messages (strings or text parts) as `system`; text, images (data:
URLs as base64 sources, http(s) URLs as url sources) and `cache_control` on text parts; tools,
tool_choice (auto, none, required, a named function) and parallel_tool_calls; assistant tool
calls as tool_use blocks and `tool` messages as tool_result blocks, consecutive ones in one user
turn; stop, temperature, top_p, user (metadata.user_id); response_format json_schema and
json_object, through a tool forced on the model whose input_schema is the schema (Anthropic's
own means on every Claude model), its input returned as the message's content.

max_tokens, which Anthropic requires: the caller's max_completion_tokens or max_tokens, else the
model's own output limit (model_info.max_output_tokens, else the price map's), else
DEFAULT_MAX_TOKENS; an answer cut there ends with finish_reason "length", never silently.
Refused with a 400 naming the field: n > 1, logprobs, content parts Anthropic cannot take.
Dropped, as Anthropic has nothing like them: presence and frequency penalties, seed,
logit_bias, OpenAI's own metadata and store."""
import json

from webapp.errors import APIError
from webapp.providers import openai_shape as shape

DEFAULT_MAX_TOKENS = 4096
# the tool that carries a response_format's JSON: reserved, so that its answer is never taken
# for one of the caller's tool calls
ANSWER_TOOL = "json_answer"
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter",
                "model_context_window_exceeded": "length"}


def finish_reason(reason, answered_in_json: bool = False) -> str:
    if answered_in_json and reason == "tool_use":
        return "stop"
    return STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def _refuse(message: str, param: str = "messages"):
    raise APIError(400, message, param=param)


def _text_blocks(content, where: str) -> list[dict]:
    """A system or tool message's content as text blocks (cache_control kept)."""
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        _refuse(f"{where} content must be a string or a list of text parts.")
    blocks = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            _refuse(f"{where} content may hold text parts only.")
        if part.get("text"):
            blocks.append(_text_block(part))
    return blocks


def _text_block(part: dict) -> dict:
    block = {"type": "text", "text": part["text"]}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(part: dict) -> dict:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}
    else:
        mime, data = shape.data_url(url)
        source = {"type": "base64", "media_type": mime, "data": data}
    return {"type": "image", "source": source}


def _content_blocks(content) -> list[dict]:
    """A user or assistant message's content as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        _refuse("A message's content must be a string or a list of content parts.")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append(_text_block(part))
        elif kind == "image_url":
            blocks.append(_image_block(part))
        else:
            _refuse(f"Content parts of type {kind!s} cannot be sent to an Anthropic deployment; "
                    "send text and image_url parts.")
    return blocks


def _assistant_blocks(message: dict) -> list[dict]:
    blocks = _content_blocks(message.get("content"))
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            _refuse("An assistant message's tool_calls must be objects.")
        call_id, name, arguments = shape.tool_arguments(call)
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
    return blocks


def _tool_result(message: dict) -> dict:
    result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or ""}
    blocks = _text_blocks(message.get("content"), "A tool message's")
    if len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
        result["content"] = blocks[0]["text"]
    elif blocks:
        result["content"] = blocks
    return result


def messages(chat_messages: list) -> tuple[list[dict], list[dict]]:
    """(system blocks, turns): user and assistant alternate as Anthropic requires, tool results
    are user turns, and consecutive turns of one role are one turn."""
    system, turns = [], []
    for message in chat_messages:
        if not isinstance(message, dict):
            _refuse("Each message must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), "A system message's"))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "user":
            blocks = _content_blocks(message.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(message)
        else:
            _refuse(f"Unknown message role {role!s}; use system, user, assistant or tool.")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # a turn of one plain text block is sent as the string it was
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
            turn["content"] = blocks[0]["text"]
    return system, turns


def _system(blocks: list[dict]):
    if len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
        return blocks[0]["text"]
    return blocks


def _tool(tool) -> dict:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type", "function") != "function":
        _refuse("tools: Anthropic deployments take function tools only.", "tools")
    name = function.get("name")
    if name == ANSWER_TOOL:
        _refuse(f"tools: the name {ANSWER_TOOL} is reserved for response_format.", "tools")
    spec = {"name": name}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return spec


def _tool_choice(choice, has_tools: bool) -> dict | None:
    if choice is None or choice == "auto":
        return {"type": "auto"} if has_tools else None
    if choice == "none":
        return {"type": "none"} if has_tools else None
    if not has_tools:
        _refuse("tool_choice needs tools.", "tool_choice")
    if choice == "required":
        return {"type": "any"}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str) or not name:
        _refuse("tool_choice must be auto, none, required or {\"type\": \"function\", "
                "\"function\": {\"name\": ...}}.", "tool_choice")
    return {"type": "tool", "name": name}


def _answer_tool(body: dict) -> dict | None:
    """The forced tool that carries a response_format's JSON, or None for plain text."""
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        schema = {"type": "object"}
    elif kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            _refuse("response_format.json_schema.schema must be a JSON schema object.",
                    "response_format")
    else:
        _refuse("response_format.type must be text, json_object or json_schema.",
                "response_format")
    if body.get("tools"):
        _refuse("An Anthropic deployment answers response_format through a tool of its own; "
                "it cannot be combined with tools.", "response_format")
    return {"name": ANSWER_TOOL, "description": "Give the answer as this tool's input.",
            "input_schema": schema}


def _tools(body: dict) -> dict:
    """tools and tool_choice as Anthropic takes them."""
    answer = _answer_tool(body)
    if answer is not None:
        return {"tools": [answer], "tool_choice": {"type": "tool", "name": ANSWER_TOOL}}
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        _refuse("tools must be a list.", "tools")
    fields = {"tools": [_tool(t) for t in tools]} if tools else {}
    choice = _tool_choice(body.get("tool_choice"), bool(tools))
    if choice is not None and body.get("parallel_tool_calls") is False:
        choice["disable_parallel_tool_use"] = True
    if choice is not None and (choice != {"type": "auto"} or "tool_choice" in body):
        fields["tool_choice"] = choice
    return fields


def request(body: dict, model: str, max_output_tokens: int | None = None) -> dict:
    """A Messages request body from an OpenAI chat body."""
    shape.refuse_unsupported(body, "Anthropic")
    system, turns = messages(body.get("messages") or [])
    payload = {"model": model, "messages": turns,
               "max_tokens": shape.max_tokens(body) or max_output_tokens or DEFAULT_MAX_TOKENS}
    if system:
        payload["system"] = _system(system)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = shape.stop_list(body)
    if stop:
        payload["stop_sequences"] = stop
    if isinstance(body.get("user"), str) and body["user"]:
        payload["metadata"] = {"user_id": body["user"]}
    payload.update(_tools(body))
    if body.get("stream") is True:
        payload["stream"] = True
    return payload


def _count(usage: dict, name: str) -> int | None:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage(raw) -> dict:
    """Anthropic's usage in OpenAI's shape: prompt_tokens counts the cached input too
    (Anthropic's input_tokens leaves it out); the cache counts are also given as Anthropic
    names them, as LiteLLM does."""
    raw = raw if isinstance(raw, dict) else {}
    read = _count(raw, "cache_read_input_tokens")
    written = _count(raw, "cache_creation_input_tokens")
    counts = shape.usage((_count(raw, "input_tokens") or 0) + (read or 0) + (written or 0),
                         _count(raw, "output_tokens") or 0, cached=read)
    if read is not None:
        counts["cache_read_input_tokens"] = read
    if written is not None:
        counts["cache_creation_input_tokens"] = written
    return counts


def response(payload: dict) -> dict:
    """A Messages answer as a chat completion."""
    blocks = payload.get("content")
    texts, calls, in_json = [], [], False
    for block in blocks if isinstance(blocks, list) else ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and block.get("name") == ANSWER_TOOL:
            texts.append(json.dumps(block.get("input"), ensure_ascii=False))
            in_json = True
        elif kind == "tool_use":
            calls.append(shape.tool_call(len(calls), block.get("id") or shape.new_call_id(),
                                         block.get("name") or "", block.get("input") or {}))
    model = payload.get("model")
    answer_id = payload.get("id")
    return shape.completion(model if isinstance(model, str) else "", "".join(texts), calls,
                            finish_reason(payload.get("stop_reason"), in_json),
                            usage(payload.get("usage")),
                            answer_id if isinstance(answer_id, str) else None)
