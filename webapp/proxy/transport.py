"""The upstream HTTP/1.1 client: keep-alive connections pooled per host, opened only to addresses
that pass the egress check at the moment of connecting, each request written in one send, answers
parsed by httptools (llhttp, the parser uvicorn uses). Redirects are never followed, no ambient
proxy, .netrc or cookie ever applies.

Why not `requests`: its adapter cost 600 us of CPU per call against this client's 64-102 us
(bench/transport.py, bench/PROFILE.md section 7), about a third of what a call cost. The sockets
are the standard library's, so the client is cooperative under gevent and thread-safe under
threads alike."""
import json
import socket
import ssl
import time
from collections import deque
from urllib.parse import quote, urlsplit

import httptools

from webapp.services import egress

RECV_SIZE = 65536
IDLE_SECONDS = 4.0  # below the 5 s keep-alive of uvicorn-served upstreams (vLLM and the like)
UNSAFE_IN_HEADERS = ("\r", "\n", "\0")


class TransportError(Exception):
    """An upstream call that failed below HTTP; `failures` maps each kind to the caller's error."""


class ConnectFailed(TransportError):
    """Refused, reset or unreachable before an answer began; nothing reached the upstream's
    application unless `sent` is true."""

    def __init__(self, message: str, sent: bool = False):
        super().__init__(message)
        self.sent = sent


class ConnectTimedOut(TransportError):
    pass


class ReadTimedOut(TransportError):
    pass


class TLSFailed(TransportError):
    pass


class BrokenAnswer(TransportError):
    """The connection closed mid-answer, or the answer is not HTTP."""


class InvalidRequest(TransportError):
    """A header that cannot be sent (a line break in a key would inject headers)."""


class _Stale(Exception):
    """A pooled connection the upstream had closed; the request is sent again on a new one."""


class Answer:
    """An upstream's answer: status and headers on arrival, the body read in full (`content`) or
    as it comes (`chunks`, `lines`). `close` gives a fully read connection back to the pool."""

    def __init__(self, connection: "_Connection"):
        self._connection = connection
        self._parser = httptools.HttpResponseParser(self)
        self._pieces: list[bytes] = []
        self._received = False
        self._headers_done = False
        self._complete = False
        self._content: bytes | None = None
        self._closed = False
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}

    # httptools callbacks
    def on_status(self, reason: bytes):
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes):
        name = name.decode("latin-1").lower()
        value = value.decode("latin-1")
        self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value

    def on_headers_complete(self):
        self._headers_done = True
        self.status = self._parser.get_status_code()
        # asked here: once the whole answer is parsed the parser has reset for the next one
        if not self._parser.should_keep_alive():
            self._connection.broken = True

    def on_body(self, data: bytes):
        self._pieces.append(data)

    def on_message_complete(self):
        self._complete = True

    def _read_more(self):
        try:
            data = self._connection.sock.recv(RECV_SIZE)
        except socket.timeout:
            self.close()
            raise ReadTimedOut("The upstream did not answer in time.") from None
        except OSError as exc:
            self.close()
            if not self._received and self._connection.reused:
                raise _Stale() from None
            raise BrokenAnswer(f"connection lost: {exc.__class__.__name__}") from None
        if not data:
            self._at_eof()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            raise BrokenAnswer(f"not an HTTP answer: {exc.__class__.__name__}") from None

    def _at_eof(self):
        self._connection.broken = True
        if not self._received and self._connection.reused:
            self.close()
            raise _Stale()
        # an answer without a length or chunked encoding ends when the connection closes
        delimited = "content-length" in self.headers or "chunked" in self.headers.get(
            "transfer-encoding", "").lower()
        if not self._headers_done or delimited:
            self.close()
            raise BrokenAnswer("the upstream closed the connection mid-answer")
        self._complete = True

    def _read_head(self):
        while not self._headers_done:
            self._read_more()

    def chunks(self):
        """The body as it arrives, without buffering."""
        while True:
            if self._pieces:
                pieces, self._pieces = self._pieces, []
                yield b"".join(pieces)
            if self._complete:
                break
            self._read_more()
        self.close()

    def lines(self):
        """The body's lines as they arrive (for answers translated line by line)."""
        pending = b""
        for chunk in self.chunks():
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.rstrip(b"\r")
        if pending:
            yield pending.rstrip(b"\r")

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.chunks())
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


class _Connection:
    __slots__ = ("key", "sock", "pool", "reused", "broken", "parked")

    def __init__(self, key: tuple, sock: socket.socket, pool: "Client"):
        self.key, self.sock, self.pool = key, sock, pool
        self.reused = self.broken = False
        self.parked = 0.0

    def close(self):
        self.broken = True
        try:
            self.sock.close()
        except OSError:
            pass


class Client:
    """Idle keep-alive connections per (scheme, host, port), at most `per_host` of each kept."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._idle: dict[tuple, deque] = {}
        self._tls: ssl.SSLContext | None = None

    def give(self, connection: _Connection):
        idle = self._idle.setdefault(connection.key, deque())
        if len(idle) >= self.per_host:
            connection.close()
            return
        connection.parked = time.monotonic()
        idle.append(connection)

    def _take(self, key: tuple) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            try:
                connection = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if now - connection.parked < IDLE_SECONDS:
                connection.reused = True
                return connection
            connection.close()
        return None

    def _open(self, key: tuple, allow: str, connect_timeout: float) -> _Connection:
        scheme, host, port = key
        try:
            sock = egress.connect(host, port, connect_timeout, allow)
        except socket.timeout:
            raise ConnectTimedOut(f"Connection to {host} timed out.") from None
        except OSError as exc:
            raise ConnectFailed(f"Failed to connect: {exc.__class__.__name__}") from None
        if scheme == "https":
            try:
                sock = self._tls_context().wrap_socket(sock, server_hostname=host)
            except socket.timeout:
                sock.close()
                raise ConnectTimedOut(f"TLS handshake with {host} timed out.") from None
            except ssl.SSLError as exc:
                sock.close()
                raise TLSFailed(f"TLS handshake failed: {exc.reason}") from None
            except OSError as exc:
                sock.close()
                raise ConnectFailed(f"Failed to connect: {exc.__class__.__name__}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(key, sock, self)

    def _tls_context(self) -> ssl.SSLContext:
        # made on first use: under gevent, after the worker patched the ssl module
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def post(self, url: str, headers: dict, body: bytes, connect_timeout: float,
             read_timeout: float, allow: str = "") -> Answer:
        """Send one POST and return once the answer's status and headers arrived."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
        head = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}",
                f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            if any(c in name or c in value for c in UNSAFE_IN_HEADERS):
                raise InvalidRequest(f"the deployment's {name} header holds a line break")
            head.append(f"{name}: {value}")
        try:
            data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        except UnicodeEncodeError:
            raise InvalidRequest("a header holds characters HTTP cannot carry") from None
        key = (scheme, host, port)
        connection = self._take(key)
        if connection is not None:
            try:
                return self._exchange(connection, data, read_timeout)
            except _Stale:
                pass
        return self._exchange(self._open(key, allow, connect_timeout), data, read_timeout)

    @staticmethod
    def _exchange(connection: _Connection, data: bytes, read_timeout: float) -> Answer:
        sock = connection.sock
        sock.settimeout(read_timeout)
        try:
            sock.sendall(data)
        except socket.timeout:
            connection.close()
            raise ReadTimedOut("The upstream did not take the request in time.") from None
        except OSError as exc:
            connection.close()
            if connection.reused:
                raise _Stale() from None
            raise ConnectFailed(f"connection lost: {exc.__class__.__name__}", sent=True) \
                from None
        answer = Answer(connection)
        answer._read_head()
        return answer
