"""A misbehaving upstream on 127.0.0.1: a raw socket server whose every connection runs a script
written by the test (`serve(peer)`), for the attacks an HTTP server library will not play
(answers without end, 1xx answers, bytes after an answer, a dripping head, bad certificates).

The server records what it received and how many bytes each connection managed to send, so a
test can show that Teamgate stopped reading early."""
import json
import socket
import ssl
import threading
from dataclasses import dataclass

from tests.fake_upstream import completion


@dataclass
class Request:
    connection: int  # 1 for the first connection the upstream accepted
    head: bytes
    headers: dict  # lower-case names
    body: bytes


class Peer:
    """One accepted connection, as the script sees it."""

    def __init__(self, sock: socket.socket, number: int, upstream: "RawUpstream"):
        self.sock, self.number, self.upstream = sock, number, upstream
        self.sent = 0
        self.ended = False  # the script returned: the connection is closed
        self._buffer = b""

    def request(self) -> Request | None:
        """The next request on this connection, or None once the client closed it."""
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                return None
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length = int(headers.get("content-length", 0))
        while len(self._buffer) < length:
            if not self._fill():
                return None
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        request = Request(self.number, head, headers, body)
        self.upstream.requests.append(request)
        return request

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self._buffer += data
        return bool(data)

    def pause(self, seconds: float) -> bool:
        """Wait, as a slow upstream does; False at once when the test closes the server."""
        return not self.upstream.closing.wait(seconds)

    def send(self, data: bytes) -> bool:
        """Write all of `data`; False once the client has gone (reset or closed)."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True


class RawUpstream:
    def __init__(self, serve, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        self.serve, self.tls = serve, tls
        self.requests: list[Request] = []
        self.peers: list[Peer] = []
        self.handshake_errors: list[str] = []
        self.closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def sent(self) -> int:
        return sum(peer.sent for peer in self.peers)

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket):
        with sock:
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.handshake_errors.append(exc.__class__.__name__)
                    return
            peer = Peer(sock, len(self.peers) + 1, self)
            self.peers.append(peer)
            try:
                self.serve(peer)
            finally:
                sock.close()
                peer.ended = True

    def finish(self, timeout: float = 5.0):
        """Wait until every connection's script has ended, so that counts are final."""
        for thread in list(self._threads):
            thread.join(timeout)

    def close(self):
        self.closing.set()
        self.listener.close()
        for peer in self.peers:
            try:
                peer.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.finish(2.0)


def answer(body: bytes, status: str = "200 OK", headers: tuple = (),
           content_type: str = "application/json") -> bytes:
    """A complete HTTP/1.1 answer with a Content-Length."""
    head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def completion_answer(content: str, **kwargs) -> bytes:
    return answer(json.dumps(completion(content=content)).encode(), **kwargs)


def answering(make_answer):
    """A script that answers each request on the connection with make_answer(peer, request)."""
    def serve(peer: Peer):
        while (request := peer.request()) is not None:
            if not peer.send(make_answer(peer, request)):
                return
    return serve
