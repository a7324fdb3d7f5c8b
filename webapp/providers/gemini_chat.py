"""Google's generateContent (Vertex AI and the Gemini API speak the same body) in OpenAI's chat
shape: the request, the answer, and streamGenerateContent's server-sent events as
chat.completion.chunk events."""
import json

from webapp.errors import APIError
from webapp.providers import openai_shape as shape

FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                  "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                  "IMAGE_SAFETY": "content_filter"}
# JSON Schema keywords Google's Schema object knows; others (additionalProperties, $schema,
# strict, ...) are refused by the API, so they are left out
SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items",
               "properties", "required", "minItems", "maxItems", "minProperties",
               "maxProperties", "minLength", "maxLength", "pattern", "minimum", "maximum",
               "anyOf", "default", "example", "propertyOrdering"}
# Gemini's function calls carry a thought signature that must come back with the call; it
# rides in the OpenAI tool call id, which clients return verbatim
SIGNATURE_MARK = "__thought__"


def schema(value: dict) -> dict:
    """A JSON Schema in the subset Google's Schema object takes."""
    if not isinstance(value, dict):
        return value
    if "$ref" in value:
        raise APIError(400, "Google's schemas take no $ref; inline the definition.",
                       param="tools")
    out = {}
    for key, item in value.items():
        if key == "properties" and isinstance(item, dict):
            out[key] = {name: schema(sub) for name, sub in item.items()}
        elif key == "items" or key == "anyOf":
            out[key] = [schema(s) for s in item] if isinstance(item, list) else schema(item)
        elif key == "type" and isinstance(item, list):
            kinds = [k for k in item if k != "null"]
            out["type"] = kinds[0] if kinds else "null"
            if "null" in item:
                out["nullable"] = True
        elif key in SCHEMA_KEYS:
            out[key] = item
    return out


def _call_part(call: dict) -> dict:
    call_id, name, arguments = shape.tool_arguments(call)
    part = {"functionCall": {"name": name, "args": arguments}}
    _, mark, signature = call_id.partition(SIGNATURE_MARK)
    if mark:
        part["thoughtSignature"] = signature
    return part


def _parts(message: dict) -> list:
    parts = []
    for part in shape.parts_of(message.get("content")):
        if part[0] == "text":
            parts.append({"text": part[1]})
        else:
            parts.append({"inlineData": {"mimeType": part[1], "data": part[2]}})
    return parts + [_call_part(call) for call in message.get("tool_calls") or ()]


def _function_response(message: dict, names: dict) -> dict:
    name = message.get("name") or names.get(message.get("tool_call_id"))
    if not name:
        raise APIError(400, "A tool message must answer a tool call of an earlier assistant "
                            "message (tool_call_id).", param="messages")
    text = shape.text_of(message.get("content"), "A tool message's")
    try:
        response = json.loads(text)
    except ValueError:
        response = None
    if not isinstance(response, dict):
        response = {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


def _contents(messages: list) -> tuple[list, list]:
    """(system parts, contents), consecutive turns of one role merged (tool results are user
    turns)."""
    system, contents, names = [], [], {}
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = shape.text_of(message.get("content"), "A system message's")
            if text:
                system.append({"text": text})
            continue
        if role == "tool":
            role, parts = "user", [_function_response(message, names)]
        elif role in ("user", "assistant"):
            for call in message.get("tool_calls") or ():
                names[call.get("id")] = (call.get("function") or {}).get("name")
            role, parts = ("model" if role == "assistant" else "user"), _parts(message)
        else:
            raise APIError(400, f"Unknown message role {role!s}.", param="messages")
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _declaration(function: dict) -> dict:
    declaration = {"name": function.get("name") or ""}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    # Google refuses an object schema without properties: a function without parameters
    if parameters and parameters.get("properties"):
        declaration["parameters"] = schema(parameters)
    return declaration


def _tool_config(choice) -> dict | None:
    if choice in ("auto", "required", "none"):
        return {"functionCallingConfig": {"mode": {"auto": "AUTO", "required": "ANY",
                                                   "none": "NONE"}[choice]}}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def _generation_config(body: dict) -> dict:
    config = {"maxOutputTokens": shape.max_tokens(body), "temperature": body.get("temperature"),
              "topP": body.get("top_p"), "stopSequences": shape.stop_list(body),
              "presencePenalty": body.get("presence_penalty"),
              "frequencyPenalty": body.get("frequency_penalty"), "seed": body.get("seed")}
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        json_schema = (response_format.get("json_schema") or {}).get("schema")
        if json_schema:
            config["responseSchema"] = schema(json_schema)
    return {k: v for k, v in config.items() if v is not None}


def request(body: dict) -> dict:
    """A generateContent request body from an OpenAI chat body."""
    shape.refuse_unsupported(body, "Google")
    system, contents = _contents(body.get("messages") or [])
    payload: dict = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": system}
    declarations = [_declaration(t.get("function") or {}) for t in body.get("tools") or ()
                    if t.get("type", "function") == "function"]
    if declarations:
        payload["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            payload["toolConfig"] = tool_config
    config = _generation_config(body)
    if config:
        payload["generationConfig"] = config
    return payload


def usage(raw: dict) -> dict:
    """Google counts cached tokens inside promptTokenCount, thinking apart from the answer."""
    thoughts = raw.get("thoughtsTokenCount") or 0
    return shape.usage(raw.get("promptTokenCount") or 0,
                       (raw.get("candidatesTokenCount") or 0) + thoughts,
                       cached=raw.get("cachedContentTokenCount"), reasoning=thoughts)


def _call_id(part: dict) -> str:
    call_id = part["functionCall"].get("id") or shape.new_call_id()
    signature = part.get("thoughtSignature")
    return call_id + SIGNATURE_MARK + signature if signature else call_id


def _read(candidate: dict, first_index: int) -> tuple[list[str], list[dict]]:
    """The answer's texts and tool calls in one candidate (thought summaries left out)."""
    texts, calls = [], []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thought") is True:
            continue
        if "text" in part:
            texts.append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            calls.append(shape.tool_call(first_index + len(calls), _call_id(part),
                                         call.get("name", ""), call.get("args") or {}))
    return texts, calls


def finish_reason(candidate: dict | None, any_calls: bool) -> str | None:
    if candidate is None:  # no candidate at all: the prompt itself was blocked
        return "content_filter"
    reason = candidate.get("finishReason")
    if reason is None:
        return None
    if any_calls and reason == "STOP":
        return "tool_calls"
    return FINISH_REASONS.get(reason, "stop")


def response(payload: dict, model: str) -> dict:
    candidates = payload.get("candidates") or [None]
    texts, calls = _read(candidates[0], 0) if candidates[0] else ([], [])
    finish = finish_reason(candidates[0], bool(calls)) or "stop"
    return shape.completion(payload.get("modelVersion") or model, "".join(texts), calls,
                            finish, usage(payload.get("usageMetadata") or {}))


class StreamTranslator:
    """streamGenerateContent events (each a partial answer) in, OpenAI SSE events out."""

    def __init__(self, model: str, outcome: shape.StreamOutcome, include_usage: bool):
        self.writer = shape.ChunkWriter(model)
        self.outcome, self.include_usage = outcome, include_usage
        self.calls = 0
        self.finish: str | None = None
        self.usage: dict | None = None

    def event(self, payload: dict):
        if payload.get("usageMetadata"):  # counts so far; the last event's are the total
            self.usage = usage(payload["usageMetadata"])
        candidates = payload.get("candidates")
        candidate = candidates[0] if candidates else None
        if candidate is None and not (payload.get("promptFeedback") or {}).get("blockReason"):
            return
        texts, calls = _read(candidate, self.calls) if candidate else ([], [])
        for text in texts:
            yield self.writer.chunk({"content": text})
        for call in calls:
            yield self.writer.chunk({"tool_calls": [call]})
        self.calls += len(calls)
        finish = finish_reason(candidate, self.calls > 0)
        if finish is not None:
            self.finish = finish
            yield self.writer.chunk({}, finish)

    def end(self):
        if self.usage is not None:
            self.outcome.take_usage(self.usage)
            if self.include_usage:
                yield self.writer.usage_chunk(self.usage)
