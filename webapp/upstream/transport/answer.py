"""One upstream answer read off its connection by httptools: status and headers on arrival, the
body whole (`content`) or as it comes (`chunks`, `lines`), each part within its limit.
Informational answers (100 Continue, 103 Early Hints) before it are skipped; the connection goes
back to the pool only when the answer was read exactly to its end and nothing came after it."""
import json
import math
import socket
import time
from dataclasses import dataclass

import httptools

from webapp.upstream.transport.errors import AnswerTooLarge, BrokenAnswer, ReadTimedOut, Stale

RECV_SIZE = 65536
# an upstream that writes as fast as loopback carries always has bytes waiting, so a read never
# waits and never lets the worker's other callers run: after this many bytes the reader gives
# way once (time.sleep(0): gevent's, under gevent), which costs a normal answer nothing
FAIR_SHARE_BYTES = 256 * 1024
# the time left is rounded up to this step, so that a socket's timeout changes (a system call)
# only once in a while, at the cost of ending up to a step after the deadline
DEADLINE_STEP = 0.05


@dataclass(frozen=True)
class Limits:
    """The most an upstream may make Teamgate hold, in bytes."""
    head: int  # status line and headers
    body: int  # an answer read whole
    line: int  # one line of an event stream read line by line


class LineSplitter:
    """An event stream's lines as its chunks arrive. Each byte is searched once and a line's
    pieces are joined once, so the work grows with the bytes however they are cut into chunks;
    a line longer than `limit` is refused before it is held whole."""
    __slots__ = ("limit", "scanned", "_pieces", "_pending")

    def __init__(self, limit: int):
        self.limit = limit
        self.scanned = 0  # bytes searched for a line break, for the tests to count
        self._pieces: list[bytes] = []
        self._pending = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines this chunk completes, without their line break."""
        self.scanned += len(chunk)
        lines, start = [], 0
        end = chunk.find(b"\n")
        while end >= 0:
            line = chunk[start:end]
            if self._pieces:
                self._pieces.append(line)
                line = b"".join(self._pieces)
                self._pieces, self._pending = [], 0
            if len(line) > self.limit:
                raise AnswerTooLarge("line", self.limit)
            lines.append(line.rstrip(b"\r"))
            start = end + 1
            end = chunk.find(b"\n", start)
        if start < len(chunk):
            self._pending += len(chunk) - start
            if self._pending > self.limit:
                raise AnswerTooLarge("line", self.limit)
            self._pieces.append(chunk[start:] if start else chunk)
        return lines

    def end(self) -> bytes | None:
        """The last line, when the stream did not end with a line break."""
        if not self._pieces:
            return None
        line, self._pieces, self._pending = b"".join(self._pieces), [], 0
        return line.rstrip(b"\r")


class Answer:
    """An upstream's answer: status and headers on arrival, the body read in full (`content`) or
    as it comes (`chunks`, `lines`). `close` gives a fully read connection back to the pool.
    No read waits longer than `read_timeout`, nor past `deadline` (time.monotonic) while one is
    set: a stream's caller lifts it once the head arrived, its chunks keep the idle timeout."""

    def __init__(self, connection, limits: Limits, read_timeout: float,
                 deadline: float | None = None):
        self._connection = connection
        self._limits = limits
        self._read_timeout = read_timeout
        self.deadline = deadline
        self._parser = httptools.HttpResponseParser(self)
        self._pieces: list[bytes] = []
        self._received = False
        self._head_bytes = 0  # the head's parsed size
        self._head_fed = 0  # bytes received while the head was still coming
        self._bare = 0  # bytes received since the head that carried no body (trailers)
        self._unyielded = 0  # bytes read since the reader last gave way
        self._headers_done = False
        self._interim = False  # parsing a 1xx answer, which the final answer follows
        self._complete = False
        self._refusal: Exception | None = None
        self._content: bytes | None = None
        self._closed = False
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}

    # httptools callbacks
    def on_message_begin(self):
        if self._complete:
            # bytes beyond the answer: it stands, but its connection is out of step
            self._connection.broken = True
            raise BrokenAnswer("bytes after the answer")

    def on_status(self, reason: bytes):
        self._head_bytes += len(reason) + 15  # "HTTP/1.1 200 " and the line break
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes):
        if self._headers_done:
            return  # a trailer after a chunked body: not one of the answer's headers
        self._head_bytes += len(name) + len(value) + 4  # ": " and the line break
        name = name.decode("latin-1").lower()
        value = value.decode("latin-1")
        self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value

    def on_headers_complete(self):
        if self._head_bytes > self._limits.head:
            self._refuse(AnswerTooLarge("head", self._limits.head))
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                self._refuse(BrokenAnswer("the upstream switched protocols"))
            self._interim = True
            return
        self._headers_done = True
        self.status = status
        # asked here: once the whole answer is parsed the parser has reset for the next one
        if not self._parser.should_keep_alive():
            self._connection.broken = True

    def on_body(self, data: bytes):
        self._pieces.append(data)

    def on_message_complete(self):
        if self._interim:  # its status and headers are not the answer's
            self._interim, self.reason, self.headers = False, "", {}
            return
        self._complete = True

    def _refuse(self, error: Exception):
        """Stop the parser from a callback; `_read_more` raises `error` instead."""
        self._refusal = error
        raise error

    def bound_the_wait(self):
        """The socket's timeout for the next send or recv: the read timeout, or the time left
        before the deadline when that is shorter (a drip of bytes cannot outlast it)."""
        timeout = self._read_timeout
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise ReadTimedOut("The upstream did not answer in time.")
            if left < timeout:
                timeout = min(timeout, math.ceil(left / DEADLINE_STEP) * DEADLINE_STEP)
        connection = self._connection
        if timeout != connection.timeout:
            connection.sock.settimeout(timeout)
            connection.timeout = timeout

    def _read_more(self):
        self.bound_the_wait()
        try:
            data = self._connection.sock.recv(RECV_SIZE)
        except socket.timeout:
            self.close()
            raise ReadTimedOut("The upstream did not answer in time.") from None
        except OSError as exc:
            self.close()
            if not self._received and self._connection.reused:
                raise Stale() from None
            raise BrokenAnswer(f"connection lost: {exc.__class__.__name__}") from None
        if not data:
            self._at_eof()
            return
        self._received = True
        self._unyielded += len(data)
        if self._unyielded >= FAIR_SHARE_BYTES:
            self._unyielded = 0
            time.sleep(0)
        headers_done = self._headers_done
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._complete:  # what came after the answer: it stands, the connection goes
                self._connection.broken = True
                return
            self.close()
            if self._refusal is not None:
                raise self._refusal from None
            raise BrokenAnswer(f"not an HTTP answer: {exc.__class__.__name__}") from None
        if not headers_done and not self._headers_done:
            # a head still coming: counted by the bytes, which also bounds a single huge header
            self._head_fed += len(data)
            if self._head_fed > self._limits.head:
                self.close()
                raise AnswerTooLarge("head", self._limits.head)
        elif headers_done and not self._pieces and not self._complete:
            # after the head, bytes without body are chunk framing or trailers, which the
            # parser holds until they end: they count against the head's limit
            self._bare += len(data)
            if self._bare > self._limits.head:
                self.close()
                raise AnswerTooLarge("head", self._limits.head)
        else:
            self._bare = 0

    def _at_eof(self):
        self._connection.broken = True
        if not self._received and self._connection.reused:
            self.close()
            raise Stale()
        # an answer without a length or chunked encoding ends when the connection closes
        delimited = "content-length" in self.headers or "chunked" in self.headers.get(
            "transfer-encoding", "").lower()
        if not self._headers_done or delimited:
            self.close()
            raise BrokenAnswer("the upstream closed the connection mid-answer")
        self._complete = True

    @property
    def line_limit(self) -> int:
        """The most one line (or event) of an event stream may hold, in bytes."""
        return self._limits.line

    def read_head(self):
        while not self._headers_done:
            self._read_more()

    def chunks(self):
        """The body as it arrives, without buffering."""
        while True:
            if self._pieces:
                pieces, self._pieces = self._pieces, []
                yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if self._complete:
                break
            self._read_more()
        self.close()

    def lines(self):
        """The body's lines as they arrive (for answers translated line by line)."""
        splitter = LineSplitter(self._limits.line)
        try:
            for chunk in self.chunks():
                yield from splitter.feed(chunk)
        except AnswerTooLarge:
            self.close()
            raise
        last = splitter.end()
        if last is not None:
            yield last

    @property
    def content(self) -> bytes:
        """The whole body, refused once it is larger than the body limit (a Content-Length
        above it is refused before the body is read)."""
        if self._content is None:
            limit = self._limits.body
            length = self.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                self.close()
                raise AnswerTooLarge("body", limit)
            pieces, size = [], 0
            for chunk in self.chunks():
                size += len(chunk)
                if size > limit:
                    self.close()
                    raise AnswerTooLarge("body", limit)
                pieces.append(chunk)
            self._content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)

    def close(self):
        """Give the connection back once the answer was read to its end; otherwise close it."""
        if self._closed:
            return
        self._closed = True
        if self._complete and not self._connection.broken:
            self._connection.pool.give(self._connection)
        else:
            self._connection.close()
