"""Parsing and validating JSON bodies: clear messages naming the field, nothing stored on error."""
import json

from flask import current_app, request
from jsonschema import Draft202012Validator
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.errors import APIError

PIECE = 64 * 1024  # a chunked body is read this much at a time
TYPE_NAMES = {"string": "a string", "object": "an object", "array": "a list",
              "integer": "an integer", "number": "a number", "boolean": "true or false",
              "null": "null"}


def _depth(value, limit: int, level: int = 1) -> bool:
    if level > limit:
        return False
    if isinstance(value, dict):
        return all(_depth(v, limit, level + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth(v, limit, level + 1) for v in value)
    return True


def _not_json(constant: str):
    # Python's parser accepts NaN and Infinity; JSON has no such numbers
    raise APIError(400, f"Malformed JSON body: {constant} is not a JSON number.")


def _raw_body() -> bytes | bytearray:
    """The body, never more than MAX_CONTENT_LENGTH of it in memory. werkzeug refuses a
    Content-Length over the limit itself, but cuts a chunked body (no Content-Length; the server
    ends the stream) at the limit without a word, which then failed as malformed JSON: such a
    body is read here a piece at a time, and one byte past the limit is a 413."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if (request.content_length is not None or limit is None
            or not request.environ.get("wsgi.input_terminated")):
        return request.get_data(cache=True)
    stream = request.environ["wsgi.input"]
    body = bytearray()
    while piece := stream.read(PIECE):
        body += piece
        if len(body) > limit:
            raise RequestEntityTooLarge()
    return body


def json_body() -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = _raw_body()
    if not raw.strip():
        raise APIError(400, "The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except UnicodeDecodeError:
        raise APIError(400, "The request body is not UTF-8 text.") from None
    except RecursionError:  # the parser itself gives up on very deep nesting
        raise APIError(400, "The request body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise APIError(400, f"Malformed JSON body: {exc.msg} at line {exc.lineno} column "
                            f"{exc.colno}. Remove comments such as '# ...' from the body.") from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.")
    if not _depth(body, current_app.config["MAX_JSON_DEPTH"]):
        raise APIError(400, "The request body is nested too deeply.")
    return body


def _path(parts) -> str | None:
    return ".".join(str(p) for p in parts) or None


def _describe(error) -> tuple[str, str | None]:
    where = _path(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        param = _path([*error.absolute_path, missing[0]])
        return f"Missing required field: {param}.", param
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        inside = f" in {where}" if where else ""
        return (f"Unknown field(s){inside}: {', '.join(unknown)}. "
                f"Allowed: {', '.join(allowed)}."), where
    if error.validator == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else expected
        names = " or ".join(TYPE_NAMES.get(t, t) for t in expected)
        return f"{where} must be {names}.", where
    if error.validator == "enum":
        values = ", ".join(str(v) for v in error.validator_value)
        return f"{where} must be one of: {values}.", where
    if error.validator in ("minLength", "maxLength", "pattern"):
        hint = error.schema.get("description", "")
        return f"{where} is not valid. {hint}".strip(), where
    if error.validator in ("minimum", "maximum", "exclusiveMinimum"):
        return f"{where} is out of range.", where
    return f"{where or 'The body'} is not valid.", where


def _nul_path(value, path=()) -> str | None:
    """Where a NUL character hides in a body (no database stores it in text), if anywhere."""
    if isinstance(value, str):
        return (".".join(map(str, path)) or "body") if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return ".".join(map(str, (*path, key.replace("\x00", ""))))
        found = _nul_path(item, (*path, key))
        if found:
            return found
    return None


def refuse_nul(value, param: str | None = None):
    where = _nul_path(value)
    if where:
        raise APIError(400, f"{param or where} contains a NUL character.", param=param or where)


def validate(body: dict, schema: dict) -> dict:
    validator = Draft202012Validator(schema)
    error = next(iter(sorted(validator.iter_errors(body), key=lambda e: len(e.absolute_path))),
                 None)
    if error is not None:
        message, param = _describe(error)
        raise APIError(400, message, param=param)
    refuse_nul(body)
    return body
