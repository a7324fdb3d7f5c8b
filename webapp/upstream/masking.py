"""Keeping a deployment's secrets (its provider key, and every other field its provider declares
secret) out of every answer relayed to the caller. An upstream may echo one (in an error event,
an echo endpoint, a model repeating its request); wherever it appears, as bytes or behind JSON
escapes, the caller gets its masked form (webapp.crypto.mask).

Cheap on the hot path: one byte search per secret in what is relayed (one, for a deployment with
an api_key); only when that also holds an escape that could spell a character of a secret
(`\\u`, or `\\/` for a key with a slash) are the JSON's parsed strings searched too. A
stream is masked in blocks of whole events, so a secret cut across two pieces of the stream is
whole when it is searched. A service-account key's private key is searched for whole and line by
line; a shorter piece of one line is not found.

What to hide is read from the target in one place, Secret.of(target)."""
import functools
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
# the members of a cloud key file (a Google service-account key) that are secret on their own
PARTS_OF_KEY_FILES = ("private_key", "private_key_id")
PEM_BEGIN = "-----BEGIN"


class _Text:
    """One secret string as it may appear in an answer, and what replaces it."""

    __slots__ = ("text", "raw", "masked", "masked_raw", "escapes")

    def __init__(self, text: str):
        self.text, self.raw = text, text.encode()
        self.masked = mask(text)
        self.masked_raw = self.masked.encode()
        self.escapes = tuple(escape for c, escape in JSON_ESCAPES.items() if c in text)


@functools.lru_cache(maxsize=1024)
def _secret_of(values: tuple[str, ...]) -> "Secret | None":
    secret = Secret(*(piece for value in values for piece in _pieces(value)))
    return secret if secret.texts else None


class Secret:
    """Every secret of a deployment (all the fields its provider declares secret: an api_key, a
    Bedrock secret key and session token, a Vertex AI service-account key and the pieces of its
    private key) as they may appear in an answer, and what replaces each. The one way masking
    learns what to hide: Secret.of(target)."""

    __slots__ = ("texts", "escapes")

    def __init__(self, *texts: str):
        # the longest first: a service-account key is masked whole before its pieces are
        kept = sorted({t for t in texts if t and len(t) >= MIN_LENGTH}, key=len, reverse=True)
        self.texts = tuple(_Text(t) for t in kept)
        self.escapes = (b"\\u", *sorted({e for t in self.texts for e in t.escapes}))

    @classmethod
    def of(cls, target) -> "Secret | None":
        """The target's secrets, None when it has none worth searching for (made once per set
        of secrets: a call asks for them in several places)."""
        values = (target.api_key, *(target.secrets or {}).values())
        return _secret_of(tuple(value for value in values if isinstance(value, str)))

    def scrub(self, data: bytes) -> bytes:
        for text in self.texts:
            if text.raw in data:
                data = data.replace(text.raw, text.masked_raw)
        return data

    def scrub_text(self, text: str) -> str:
        for secret in self.texts:
            if secret.text in text:
                text = text.replace(secret.text, secret.masked)
        return text

    def may_hide(self, data: bytes) -> bool:
        """Whether JSON in these bytes could spell a secret other than as its own bytes."""
        for escape in self.escapes:
            if escape in data:
                return True
        return False

    def scrub_value(self, value) -> tuple[object, bool]:
        """A parsed JSON value with every secret masked in every string, keys included (changed
        in place), and whether one was there."""
        found = False
        for text in self.texts:
            value, seen = _scrub_value(text, value)
            found = found or seen
        return value, found


def _pieces(value: str) -> list[str]:
    """A secret and the parts of it an upstream could echo alone: a service-account key's
    private key (as text and as each line of its PEM body) and private_key_id."""
    pieces = [value]
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for name in PARTS_OF_KEY_FILES:
                part = parsed.get(name)
                if isinstance(part, str):
                    pieces.append(part)
    for piece in list(pieces):
        if PEM_BEGIN in piece:
            pieces += [line.strip() for line in piece.replace("\\n", "\n").splitlines()
                       if line.strip() and not line.startswith("-----")]
    return pieces


def _scrub_value(secret: _Text, value) -> tuple[object, bool]:
    """Iterative: parsed JSON may nest deeply."""
    if isinstance(value, str):
        return (value.replace(secret.text, secret.masked), True) if secret.text in value \
            else (value, False)
    found, stack = False, [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(secret.text in name for name in node):
                items = [(name.replace(secret.text, secret.masked), item)
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
                if secret.text in item:
                    node[name] = item.replace(secret.text, secret.masked)
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
    block = secret.scrub(block)
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
    """How many bytes at the end of `data` could be the start of a secret: what to keep until
    more arrives, when an event is too long to wait for its end."""
    if secret is None:
        return 0
    held = 0
    for text in secret.texts:
        for size in range(min(len(text.raw) - 1, len(data)), held, -1):
            if data.endswith(text.raw[:size]):
                held = size
                break
    return held
