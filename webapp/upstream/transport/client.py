"""The upstream client's connections: kept alive in a pool per host and credential, each
request written in one send, its answer read by `answer.Answer`."""
import fcntl
import re
import socket
import termios
import threading
import time
from collections import deque
from urllib.parse import quote, urlsplit

from webapp.upstream.transport.answer import Answer, Limits
from webapp.upstream.transport.connecting import Connector
from webapp.upstream.transport.errors import ConnectFailed, InvalidRequest, ReadTimedOut, Stale

IDLE_SECONDS = 4.0  # below the 5 s keep-alive of uvicorn-served upstreams (vLLM and the like)
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 header names
FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")  # printable ASCII, spaces and tabs
NOTHING_PENDING = bytes(4)  # FIONREAD's answer for an empty receive buffer
DESTINATIONS_KEPT = 4096  # parsed upstream URLs; past it the table starts over


class _Connection:
    __slots__ = ("key", "sock", "pool", "tls", "reused", "broken", "parked", "timeout")

    def __init__(self, key: tuple, sock: socket.socket, pool: "Client", tls: bool):
        self.key, self.sock, self.pool, self.tls = key, sock, pool, tls
        self.reused = self.broken = False
        self.parked = 0.0
        self.timeout = -1.0  # the socket's, as last set by an answer (-1: not yet)

    def quiet(self) -> bool:
        """Nothing arrived while the connection was idle: bytes there (an answer to no request,
        a TLS alert) would be read as the next call's answer. An upstream that closed it shows
        as the stale connection the request is sent again for."""
        try:
            if fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, NOTHING_PENDING) \
                    != NOTHING_PENDING:
                return False
        except OSError:
            return False
        return not (self.tls and self.sock.pending())

    def close(self):
        self.broken = True
        try:
            self.sock.close()
        except OSError:
            pass


class Client:
    """Idle keep-alive connections per (scheme, host, port, pool key), at most `per_host` of
    each kept. The pool key names the credential (forwarding passes a hash of the team and its
    auth headers), so two teams never share a connection."""

    def __init__(self, per_host: int, limits: Limits, ca_file: str = "", proxy: str = ""):
        """`ca_file`: PEM certificates of authorities trusted besides the system's; `proxy`:
        the operator's egress proxy (http://host:port), empty to connect directly."""
        self.per_host, self.limits = per_host, limits
        self._connector = Connector(ca_file, proxy)
        self._idle: dict[tuple, deque] = {}
        self._lock = threading.Lock()  # give and sweep; taking is one atomic pop
        self._swept = time.monotonic()
        self._destinations: dict[str, tuple] = {}

    def give(self, connection: _Connection):
        now = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(connection.key, deque())
            if len(idle) >= self.per_host:
                connection.close()
                return
            connection.parked = now
            idle.append(connection)
            if now - self._swept > IDLE_SECONDS:
                self._sweep(now)

    def close(self):
        """Close every idle connection (the app shutting down, a test ending)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _sweep(self, now: float):
        """Close the connections idle too long, oldest first, and forget emptied pool keys, so
        credentials called once do not keep sockets open."""
        self._swept = now
        for key, idle in list(self._idle.items()):
            try:
                while now - idle[0].parked >= IDLE_SECONDS:
                    idle.popleft().close()
            except IndexError:  # emptied, here or by a call taking the last one
                del self._idle[key]

    def _take(self, key: tuple) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            try:
                connection = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if now - connection.parked < IDLE_SECONDS and connection.quiet():
                connection.reused = True
                return connection
            connection.close()
        return None

    def _open(self, key: tuple, allow: str, connect_timeout: float) -> _Connection:
        scheme, host, port, _ = key
        sock = self._connector.open(scheme, host, port, allow, connect_timeout)
        return _Connection(key, sock, self, scheme == "https")

    def post(self, url: str, headers: dict, body, connect_timeout: float,
             read_timeout: float, allow: str = "", pool_key: bytes = b"",
             deadline: float | None = None, method: str = "POST") -> Answer:
        """Send one request (a POST unless `method` says otherwise) and return once the
        answer's status and headers arrived. Connections are shared only between calls with the
        same `pool_key`. `deadline` (time.monotonic) bounds connecting, sending and every read
        of the answer, until the caller lifts it (`Answer.deadline = None`); the read timeout
        bounds each wait for bytes. `body` is bytes, or pieces of a known len() sent as they
        come (an upload): such a body can be sent only once, so it goes on a new connection,
        never on one that may be stale."""
        scheme, host, port, request_line, host_line = self._destination(url)
        if method != "POST":
            request_line = method + request_line[4:]
        head = [request_line, host_line, f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            _check_header(name, value)
            head.append(f"{name}: {value}")
        streamed = not isinstance(body, bytes)
        try:
            data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidRequest("a header holds characters HTTP cannot carry") from None
        if not streamed:
            data += body
        key = (scheme, host, port, pool_key)
        connection = None if streamed else self._take(key)
        if connection is not None:
            try:
                return self._exchange(connection, data, read_timeout, deadline)
            except Stale:
                pass
        if deadline is not None:
            # at least a moment, so that the egress check still answers first (a refused
            # host is the caller's 400, whatever the time left)
            connect_timeout = min(connect_timeout, max(deadline - time.monotonic(), 0.001))
        connection = self._open(key, allow, connect_timeout)
        return self._exchange(connection, data, read_timeout, deadline,
                              body if streamed else ())

    def _destination(self, url: str) -> tuple:
        """Scheme, host, port, request line and Host header of a URL, kept once made: parsing
        and quoting cost more than the rest of writing a request."""
        made = self._destinations.get(url)
        if made is None:
            parts = urlsplit(url)
            scheme = parts.scheme
            target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
            if parts.query:
                target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
            made = (scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80),
                    f"POST {target} HTTP/1.1", f"Host: {parts.netloc}")
            if len(self._destinations) >= DESTINATIONS_KEPT:
                self._destinations.clear()
            self._destinations[url] = made
        return made

    def _exchange(self, connection: _Connection, data: bytes, read_timeout: float,
                  deadline: float | None, pieces=()) -> Answer:
        answer = Answer(connection, self.limits, read_timeout, deadline)
        answer.bound_the_wait()
        sent = False
        try:
            connection.sock.sendall(data)
            for piece in pieces:
                answer.bound_the_wait()
                connection.sock.sendall(piece)
            sent = True
        except socket.timeout:
            connection.close()
            raise ReadTimedOut("The upstream did not take the request in time.") from None
        except OSError as exc:
            connection.close()
            if connection.reused:
                raise Stale() from None
            raise ConnectFailed(f"connection lost: {exc.__class__.__name__}", sent=True) \
                from None
        finally:
            if not sent:  # the pieces failed (the caller's upload broke off): half a request
                connection.close()
        answer.read_head()
        return answer


def _check_header(name: str, value: str):
    """Refuse a header HTTP cannot carry as it is: a name that is not a token, a value with a
    control character (a line break would inject headers; \\x0b, \\x0c, \\x85 split lines for
    some parsers) or anything but printable ASCII. The message never holds the value."""
    if not (name.isascii() and (name.replace("-", "").isalnum() or TOKEN.fullmatch(name))):
        raise InvalidRequest("a header name is not an HTTP token")
    if value.isascii() and value.isprintable() or FIELD_VALUE.fullmatch(value):
        return
    if "\r" in value or "\n" in value:
        what = "a line break"
    elif any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in value):
        what = "a control character"
    else:
        what = "a character HTTP cannot carry (only printable ASCII is sent)"
    raise InvalidRequest(f"the deployment's {name} header holds {what}")
