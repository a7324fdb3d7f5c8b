"""OpenAI's Responses API in terms of chat completions, both ways: for a /v1/responses call to a
deployment that speaks chat only (vLLM-style servers, and through their own translations
Anthropic, Bedrock and Vertex). The stream's translation is in responses_stream.py.

Kept: `input` as a string or items (messages with input_text / input_image / output_text parts,
function_call and function_call_output items), `instructions`, function tools and tool_choice,
`text.format` (json_schema, json_object), temperature, top_p, max_output_tokens, user,
reasoning.effort. Reasoning items of earlier turns are left out (only OpenAI can read their
encrypted content). Refused with a 400 naming the field: hosted tools (web search, file search,
computer use, ...), `background`, items only OpenAI can resolve (item_reference, file ids)."""
import json
import time
import uuid

from webapp.errors import APIError

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# chat's finish_reason -> (status, incomplete_details.reason)
FINISHES = {"length": ("incomplete", "max_output_tokens"),
            "content_filter": ("incomplete", "content_filter")}


def _refuse(message: str, param: str = "input"):
    raise APIError(400, message, param=param)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _part(part, role: str) -> dict:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal") or ""}
    if kind == "input_image" and role == "user":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            _refuse("input_image: this deployment takes image_url (a data: or https URL), "
                    "not file_id.")
        image = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    _refuse(f"input: content parts of type {kind} cannot be sent to this deployment (it "
            "speaks chat completions); send input_text and input_image parts.")


def _message(item: dict) -> dict:
    role = ROLES.get(item.get("role"))
    if role is None:
        _refuse(f"input: a message's role must be user, assistant, system or developer, not "
                f"{item.get('role')!r}.")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        _refuse("input: a message's content must be a string or a list of parts.")
    parts = [_part(part, role) for part in content]
    if role != "user" or all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _output(value) -> str:
    """A function_call_output's output: a string, or parts of which the text is kept."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text") or "" for p in value if isinstance(p, dict))
    return json.dumps(value)


def chat_messages(items) -> list[dict]:
    """Responses input items as chat messages: consecutive function calls (and the assistant's
    text just before them) make one assistant message with tool_calls."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages = []
    for item in items:
        if not isinstance(item, dict):
            _refuse("input: each item must be an object.")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item))
        elif kind == "function_call":
            call = {"id": item.get("call_id") or "", "type": "function",
                    "function": {"name": item.get("name") or "",
                                 "arguments": item.get("arguments") or "{}"}}
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and isinstance(last.get("content"),
                                                                    (str, type(None))):
                last.setdefault("tool_calls", []).append(call)
                last["content"] = last.get("content") or None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.get("call_id") or "",
                             "content": _output(item.get("output"))})
        elif kind == "reasoning":
            continue
        else:
            _refuse(f"input: items of type {kind} cannot be sent to this deployment (it speaks "
                    "chat completions).")
    return messages


def _tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        _refuse("tools: must be a list.", "tools")
    chat = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            _refuse(f"tools: this deployment takes function tools only, not {kind} (hosted "
                    "tools need an OpenAI or Azure deployment).", "tools")
        function = {"name": tool.get("name"),
                    "parameters": tool.get("parameters") or {"type": "object",
                                                             "properties": {}}}
        for name in ("description", "strict"):
            if tool.get(name) is not None:
                function[name] = tool[name]
        chat.append({"type": "function", "function": function})
    return chat


def _tool_choice(choice):
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    _refuse("tool_choice: this deployment takes auto, none, required or a function.",
            "tool_choice")


def _response_format(text) -> dict | None:
    form = text.get("format") if isinstance(text, dict) else None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {k: form[k] for k in ("name", "schema", "strict", "description") if k in form}
        return {"type": "json_schema", "json_schema": schema}
    _refuse(f"text.format: type must be text, json_object or json_schema, not {kind}.", "text")


def chat_body(body: dict) -> dict:
    """A Responses request (its conversation already joined, see proxy/conversations.py) as a
    chat completions request."""
    if body.get("background"):
        _refuse("background: this deployment answers while the call waits; remove background.",
                "background")
    messages = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": str(body["instructions"])})
    messages.extend(chat_messages(body["input"]))
    chat = {"model": body["model"], "messages": messages}
    for name in ("temperature", "top_p", "user", "parallel_tool_calls"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    effort = body["reasoning"].get("effort") if isinstance(body.get("reasoning"), dict) else None
    if effort:
        chat["reasoning_effort"] = effort
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format(body.get("text"))
    if response_format:
        chat["response_format"] = response_format
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _detail(details, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def usage(usage) -> dict:
    """Chat's usage in the Responses shape."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    return {"input_tokens": prompt, "output_tokens": completion,
            "total_tokens": usage.get("total_tokens") or prompt + completion,
            "input_tokens_details": {"cached_tokens": _detail(
                usage.get("prompt_tokens_details"), "cached_tokens")},
            "output_tokens_details": {"reasoning_tokens": _detail(
                usage.get("completion_tokens_details"), "reasoning_tokens")}}


def text_item(text: str, item_id: str | None = None, status: str = "completed") -> dict:
    return {"type": "message", "id": item_id or new_id("msg"), "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [],
                         "logprobs": []}]}


def call_item(call_id: str, name: str, arguments: str, item_id: str | None = None,
              status: str = "completed") -> dict:
    return {"type": "function_call", "id": item_id or new_id("fc"),
            "call_id": call_id or new_id("call"), "name": name, "arguments": arguments,
            "status": status}


def response(response_id: str, model: str, output: list, status: str = "completed",
             finish: str | None = None, usage_: dict | None = None, created: int | None = None,
             error: dict | None = None) -> dict:
    """A Response object; the fields the caller set are added by whoever has the request."""
    status, reason = FINISHES.get(finish, (status, None)) if status == "completed" else (
        status, None)
    return {"id": response_id, "object": "response", "created_at": created or int(time.time()),
            "status": status, "model": model, "output": output, "error": error,
            "incomplete_details": {"reason": reason} if reason else None,
            "instructions": None, "metadata": {}, "parallel_tool_calls": True,
            "temperature": None, "top_p": None, "tool_choice": "auto", "tools": [],
            "text": {"format": {"type": "text"}}, "usage": usage_}


def from_completion(payload: dict, model: str) -> dict:
    """A chat completion as a Response."""
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(
        choices[0], dict) else {}
    answer = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    output = []
    if isinstance(answer.get("content"), str) and answer["content"]:
        output.append(text_item(answer["content"]))
    for call in answer.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append(call_item(call.get("id") or "", function.get("name") or "",
                                    function.get("arguments") or "{}"))
    return response(new_id("resp"), model, output, finish=choice.get("finish_reason"),
                    usage_=usage(payload.get("usage")))
