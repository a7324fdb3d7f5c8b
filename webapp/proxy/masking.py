"""Keeping the team's provider key out of every answer relayed to the caller. An upstream may
echo the key (in an error event, an echo endpoint, a model repeating its request); wherever it
appears, as bytes or behind JSON escapes, the caller gets its masked form (webapp.crypto.mask).

Cheap on the hot path: one byte search for the key in what is relayed; only when that also holds
an escape that could spell a character of the key (`\\u`, or `\\/` for a key with a slash) are
the JSON's parsed strings searched too. A stream is masked in blocks of whole events, so a key
cut across two pieces of the stream is whole when it is searched."""
import json
import re

from webapp.crypto import mask

# a shorter key is a placeholder (vLLM's "EMPTY", "none"): replacing it everywhere would corrupt
# answers, and it opens nothing
MIN_LENGTH = 8
JSON_ESCAPES = {'"': b'\\"', "\\": b"\\\\", "/": b"\\/", "\b": b"\\b", "\f": b"\\f",
                "\n": b"\\n", "\r": b"\\r", "\t": b"\\t"}
DATA = b"data:"
EVENT_END = re.compile(rb"\n\r?\n")  # a line's end, then an empty line


class Secret:
    """The team's key as it may appear in an answer, and what replaces it."""

    __slots__ = ("text", "raw", "masked", "masked_raw", "escapes")

    def __init__(self, text: str):
        self.text, self.raw = text, text.encode()
        self.masked = mask(text)
        self.masked_raw = self.masked.encode()
        self.escapes = (b"\\u", *[escape for c, escape in JSON_ESCAPES.items() if c in text])

    @classmethod
    def of(cls, api_key: str | None) -> "Secret | None":
        return cls(api_key) if api_key and len(api_key) >= MIN_LENGTH else None

    def scrub(self, data: bytes) -> bytes:
        return data.replace(self.raw, self.masked_raw) if self.raw in data else data

    def may_hide(self, data: bytes) -> bool:
        """Whether JSON in these bytes could spell the key other than as its own bytes."""
        for escape in self.escapes:
            if escape in data:
                return True
        return False

    def scrub_value(self, value) -> tuple[object, bool]:
        """A parsed JSON value with the key masked in every string, keys included (changed in
        place), and whether the key was there. Iterative: parsed JSON may nest deeply."""
        if isinstance(value, str):
            return (value.replace(self.text, self.masked), True) if self.text in value \
                else (value, False)
        found, stack = False, [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if any(self.text in name for name in node):
                    items = [(name.replace(self.text, self.masked), item)
                             for name, item in node.items()]
                    node.clear()
                    node.update(items)
                    found = True
                pairs = node.items()
            elif isinstance(node, list):
                pairs = enumerate(node)
            else:
                continue
            for name, item in list(pairs):
                if isinstance(item, str):
                    if self.text in item:
                        node[name] = item.replace(self.text, self.masked)
                        found = True
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        return value, found


def answer(secret: Secret | None, content: bytes, payload) -> bytes | None:
    """The bytes to relay for an upstream's JSON answer, the key masked; None when the key hid
    behind escapes, so that `payload` (masked now) has to be serialised again."""
    if secret is None:
        return content
    # b"\0" near the start: UTF-16 or UTF-32 JSON, where no byte search finds the key
    if (secret.may_hide(content) or b"\0" in content[:4]) and secret.scrub_value(payload)[1]:
        return None
    return secret.scrub(content)


def events(secret: Secret | None, block: bytes) -> bytes:
    """Whole server-sent events (each one's lines and the blank line after them), the key
    masked."""
    if secret is None:
        return block
    if secret.raw in block:
        block = block.replace(secret.raw, secret.masked_raw)
    if not secret.may_hide(block):
        return block
    parts, start = [], 0
    for end in EVENT_END.finditer(block):
        parts.append(_event(secret, block[start:end.end()]))
        start = end.end()
    if start < len(block):
        parts.append(_event(secret, block[start:]))
    return b"".join(parts)


def _event(secret: Secret, data: bytes) -> bytes:
    lines = data.rstrip(b"\r\n").split(b"\n")
    # a client joins the data lines of an event with line breaks before it parses them
    joined = b"\n".join(line[5:].removeprefix(b" ") for line in lines if line.startswith(DATA))
    try:
        value, found = secret.scrub_value(json.loads(joined))
    except ValueError:  # not JSON: nothing reads the escapes as characters
        return data
    except RecursionError:  # nested too deeply to look inside: not relayed at all
        return b": an event nested too deeply to check was left out\n\n"
    if not found:
        return data
    kept = [line for line in lines if not line.startswith(DATA)]
    return b"\n".join([*kept, DATA + b" " + json.dumps(value).encode()]) + b"\n\n"


def held_back(secret: Secret | None, data: bytes) -> int:
    """How many bytes at the end of `data` could be the start of the key: what to keep until
    more arrives, when an event is too long to wait for its end."""
    if secret is None:
        return 0
    for size in range(min(len(secret.raw) - 1, len(data)), 0, -1):
        if data.endswith(secret.raw[:size]):
            return size
    return 0
