"""Multipart uploads (audio transcriptions), sent upstream as they arrive. The upload is read only
until its `model` field has passed and a file begins (OpenAI's clients send their fields before
the file; curl's examples the model after it, in which case what came before is held in a
temporary file, never whole in memory); the call is resolved from that field, and the upstream
receives the caller's bytes as they were sent with only the model field's value replaced by the
deployment's model. Every part's name is checked on the way: a field that would choose the
upstream is refused, as in a JSON body."""
import tempfile

from flask import current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header

from webapp.errors import APIError

PIECE = 64 * 1024  # read from the caller and written upstream this much at a time
HELD_IN_MEMORY = 1024 * 1024  # past this, what is held before the model field goes to disk
MAX_FIELD = 64 * 1024  # a text field's value kept for the call (model, stream, ...)
MAX_HEAD = 16 * 1024  # one part's headers


def _malformed(what: str) -> APIError:
    return APIError(400, f"The multipart/form-data body is malformed: {what}.")


class Parts:
    """The parts of a multipart body as its pieces pass: each part's name checked, the values
    of small text fields kept, and where the model field's value lies in the body. Work grows
    with the bytes: each piece is searched once for the boundary."""

    def __init__(self, boundary: bytes, refused: frozenset):
        self.delimiter = b"\r\n--" + boundary
        self.refused = refused
        self.window = bytearray(b"\r\n")  # the body's first delimiter has no line break before
        self.offset = -2  # where window[0] lies in the body
        self.state = "body"  # then "after" a delimiter, a part's "headers", or the "end"
        self.name: str | None = None  # the current part's field name (None: preamble)
        self.keep = False  # the current part is a text field whose value is kept
        self.fields: dict[str, str] = {}
        self.model_span: tuple[int, int] | None = None
        self.in_file = False  # the current part is a file

    def feed(self, piece: bytes):
        if self.state == "end":
            return
        self.window += piece
        while self._step():
            pass

    def _step(self) -> bool:
        """Take what the window holds as far as it goes; True while there is more to take."""
        window = self.window
        if self.state == "body":
            found = window.find(self.delimiter)
            if found < 0:
                if self.keep and len(window) <= MAX_FIELD:
                    return False
                if self.keep and self.name == "model":
                    raise APIError(400, "model is too long.", param="model")
                self.keep = False  # a file, or a text field too long to keep: passed on only
                self._drop(len(window) - len(self.delimiter) + 1)
                return False
            if self.keep:
                self._field(bytes(window[:found]))
            self._drop(found + len(self.delimiter))
            self.state = "after"
            return True
        if self.state == "after":
            if len(window) < 2:
                return False
            if window[:2] == b"--":
                self.state = "end"
                return False
            end = window.find(b"\r\n")
            if end < 0 or window[:end].strip(b" \t"):  # only padding may precede the break
                if end >= 0 or len(window) > MAX_HEAD:
                    raise _malformed("a boundary is not followed by a line break")
                return False
            self._drop(end + 2)
            self.state = "headers"
            return True
        if self.state == "headers":
            end = window.find(b"\r\n\r\n")
            if end < 0:
                if len(window) > MAX_HEAD:
                    raise _malformed("a part's headers are too long")
                return False
            self._part(bytes(window[:end]))
            self._drop(end + 4)
            self.state = "body"
            return True
        return False

    def _drop(self, size: int):
        if size > 0:
            del self.window[:size]
            self.offset += size

    def _part(self, head: bytes):
        disposition = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value.strip()
        kind, options = parse_options_header(disposition or "")
        if kind != "form-data" or "name" not in options:
            raise _malformed("a part has no Content-Disposition: form-data with a name")
        self.name = options["name"]
        if self.name in self.refused:
            raise APIError(400, f"Fields that choose the upstream or its credentials are not "
                                f"accepted in a call: {self.name}.", param=self.name)
        if self.name == "model" and (self.model_span is not None or "filename" in options):
            raise APIError(400, "Send one model field, as text.", param="model")
        self.keep = "filename" not in options
        self.in_file = not self.keep

    def _field(self, value: bytes):
        try:
            text = value.decode()
        except UnicodeDecodeError:
            raise APIError(400, f"{self.name} is not UTF-8 text.", param=self.name) from None
        if self.name == "model":
            self.model_span = (self.offset, self.offset + len(value))
        self.fields.setdefault(self.name, text)


class Upload(dict):
    """An upload's text fields read so far (what the call path checks and resolves), and the
    means to send the whole upload on."""

    def __init__(self, fields: dict, content_type: str, held, parts: Parts, stream,
                 length: int, read: int):
        super().__init__(fields)
        if "stream" in self:  # a form's true is text
            self["stream"] = self["stream"].strip().lower() == "true"
        self.content_type = content_type
        self._held, self._parts, self._stream = held, parts, stream
        self._length, self._read = length, read

    def upstream(self, model: str) -> "UploadBody":
        return UploadBody(self, model.encode())

    def __del__(self):  # a call refused before it was sent never reads what is held
        self._held.close()


class UploadBody:
    """What the upstream receives: the caller's bytes, the model field's value replaced. Its
    length is known before the first byte (the transport sends it as Content-Length)."""

    def __init__(self, upload: Upload, model: bytes):
        self.upload, self.model = upload, model
        start, end = upload._parts.model_span
        self._length = upload._length - (end - start) + len(model)

    def __len__(self) -> int:
        return self._length

    def __iter__(self):
        upload = self.upload
        start, end = upload._parts.model_span
        held = upload._held
        try:
            held.seek(0)
            yield from _pieces(held, start)
            yield self.model
            held.seek(end)
            yield from _pieces(held, upload._read - end)
            held.close()
            received = upload._read
            while received < upload._length:
                piece = _read(upload._stream, min(PIECE, upload._length - received))
                if not piece:
                    raise APIError(400, "The upload ended before its Content-Length.")
                upload._parts.feed(piece)
                received += len(piece)
                yield piece
        finally:
            held.close()


def _pieces(held, size: int):
    while size > 0:
        piece = held.read(min(PIECE, size))
        if not piece:
            return
        size -= len(piece)
        yield piece


def _read(stream, size: int) -> bytes:
    try:
        return stream.read(size)
    except RequestEntityTooLarge:
        raise _too_large() from None
    except ClientDisconnected:
        raise APIError(400, "The upload broke off before its end.") from None


def _too_large() -> APIError:
    limit = current_app.config["MAX_UPLOAD_BYTES"] / (1024 * 1024)
    return APIError(413, f"Upload too large: Teamgate takes at most {limit:g} MiB "
                         "(TEAMGATE_MAX_UPLOAD_MB).")


def read(refused: frozenset) -> Upload:
    """The upload's fields up to its model field and the file after it (all of them when the
    caller sent it without a Content-Length, which the upstream needs: such an upload is held
    in a temporary file)."""
    content_type = request.headers.get("Content-Type", "")
    kind, options = parse_options_header(content_type)
    boundary = options.get("boundary", "")
    if kind != "multipart/form-data" or not boundary or not boundary.isascii():
        raise APIError(400, "Send the upload as multipart/form-data with a file and a model "
                            "field.", param="file")
    request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"]
    length = request.content_length
    if length is not None and length > request.max_content_length:
        raise _too_large()
    stream = request.stream
    parts = Parts(boundary.encode(), refused)
    held = tempfile.SpooledTemporaryFile(max_size=HELD_IN_MEMORY)
    read_so_far = 0
    try:
        while length is None or parts.model_span is None or not (
                parts.in_file or parts.state == "end"):
            piece = _read(stream, PIECE if length is None else min(PIECE, length - read_so_far))
            if not piece:
                break
            held.write(piece)
            parts.feed(piece)
            read_so_far += len(piece)
        if parts.model_span is None:
            if parts.state == "end" or read_so_far == length:
                raise APIError(400, "Missing required field: model.", param="model")
            raise APIError(400, "The upload ended before its model field.", param="model")
    except APIError:
        held.close()
        raise
    if length is None:
        length = read_so_far
    return Upload(parts.fields, content_type, held, parts, stream, length, read_so_far)
