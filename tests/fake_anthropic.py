"""A loopback server that plays Anthropic's Messages API: it answers as the FakeUpstream does
(JSON bodies, or recorded event streams from tests/fixtures/anthropic/*.sse), but first checks
each request as Anthropic does and refuses what Anthropic would refuse, with Anthropic's error
shape: a missing x-api-key or anthropic-version, fields the Messages API does not take (OpenAI's
n, stream_options, response_format, user, ...), a system prompt that is not a string or text
blocks, roles other than user and assistant, content blocks of unknown types, tool_use blocks
not answered by tool_result blocks at the start of the next user turn, a tool_choice naming a
tool that is not there."""
from pathlib import Path

from tests.fake_upstream import FakeUpstream, Received, Reply

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
TOP_LEVEL = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences",
             "stream", "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking",
             "service_tier", "container", "mcp_servers", "output_config", "context_management"}
BLOCKS = {"user": {"text", "image", "document", "tool_result", "search_result"},
          "assistant": {"text", "tool_use", "thinking", "redacted_thinking",
                        "server_tool_use", "web_search_tool_result"}}
TOOL_CHOICES = {"auto", "any", "tool", "none"}


def sse_events(name: str) -> list[bytes]:
    """A recorded stream (tests/fixtures/anthropic/<name>) as its events, each whole."""
    data = (FIXTURES / name).read_bytes()
    return [event + b"\n\n" for event in data.split(b"\n\n") if event.strip()]


def recorded(name: str) -> Reply:
    return Reply(chunks=sse_events(name), raw_events=True)


def message(text="Hello.", model="claude-sonnet-4-5-20250929", stop="end_turn",
            content=None, **usage) -> dict:
    return {"id": "msg_01FakeAnthropic", "type": "message", "role": "assistant",
            "model": model, "content": content if content is not None else [
                {"type": "text", "text": text}],
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 3,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, **usage}}


def refused(status: int, kind: str, text: str) -> Reply:
    return Reply(status=status, body={"type": "error", "error": {"type": kind,
                                                                 "message": text}})


def problems(body) -> list[str]:
    """What Anthropic's Messages API would refuse in a body, as its messages say it."""
    if not isinstance(body, dict):
        return ["body: Input should be an object"]
    found = [f"{name}: Extra inputs are not permitted" for name in body if name not in TOP_LEVEL]
    if not isinstance(body.get("max_tokens"), int):
        found.append("max_tokens: Field required")
    system = body.get("system")
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text"
                                             and isinstance(b.get("text"), str)
                                             for b in system)):
        found.append("system: Input should be a valid string or a list of text blocks")
    found += _turn_problems(body.get("messages"))
    names = {t.get("name") for t in body.get("tools") or () if isinstance(t, dict)}
    for tool in body.get("tools") or ():
        if (tool.get("input_schema") or {}).get("type") != "object":
            found.append("tools: input_schema.type: Input should be 'object'")
    choice = body.get("tool_choice")
    if choice is not None and (choice.get("type") not in TOOL_CHOICES or (
            choice["type"] == "tool" and choice.get("name") not in names)):
        found.append("tool_choice: Tool not found or invalid type")
    if set(body.get("metadata") or {}) - {"user_id"}:
        found.append("metadata: Extra inputs are not permitted")
    return found


def _turn_problems(turns) -> list[str]:
    if not isinstance(turns, list) or not turns:
        return ["messages: Field required"]
    found, waiting = [], set()  # the tool_use ids the next user turn must answer
    for number, turn in enumerate(turns):
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in BLOCKS:
            found.append(f"messages.{number}.role: Input should be 'user' or 'assistant'")
            continue
        content = turn.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            found.append(f"messages.{number}: all messages must have non-empty content")
            continue
        kinds = [b.get("type") if isinstance(b, dict) else None for b in blocks]
        found += [f"messages.{number}.content: unknown block type {k}"
                  for k in kinds if k not in BLOCKS[role]]
        answered = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        if waiting and (role != "user" or set(answered) != waiting
                        or kinds[:len(answered)] != ["tool_result"] * len(answered)):
            found.append(f"messages.{number}: tool_use ids were found without tool_result "
                         f"blocks immediately after: {', '.join(sorted(waiting))}")
        waiting = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
        for block in blocks:
            if block.get("type") == "image" and (block.get("source") or {}).get(
                    "type") not in ("base64", "url", "file"):
                found.append(f"messages.{number}: image source type must be base64 or url")
    return found


class FakeAnthropic(FakeUpstream):
    def __init__(self, name="anthropic"):
        super().__init__(name)
        self.default = Reply(body=message())

    def refusal(self, received: Received) -> Reply | None:
        headers = {k.lower(): v for k, v in received.headers.items()}
        if not headers.get("x-api-key"):
            return refused(401, "authentication_error", "x-api-key header is required")
        if not headers.get("anthropic-version"):
            return refused(400, "invalid_request_error",
                           "anthropic-version: header is required")
        if received.path.endswith("/count_tokens"):
            return None
        found = problems(received.body)
        if found:
            return refused(400, "invalid_request_error", "; ".join(found))
        return None

