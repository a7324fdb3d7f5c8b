"""A real HTTP server on 127.0.0.1 that plays an OpenAI-compatible or Azure upstream.

Tests program its answers with `reply(...)` and read what it received from `requests`."""
import json
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.serving import Serving


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: dict | None
    raw: bytes = b""  # the body's bytes as they arrived


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; bytes -> as is; None -> a chat completion
    headers: dict = field(default_factory=dict)
    chunks: list | None = None  # SSE payloads sent one by one
    chunk_delay: float = 0.0
    delay: float = 0.0  # before the status line
    drop_after: int | None = None  # close the connection after this many chunks
    content_length: int | None = None  # lie about the length (truncated bodies)
    raw_events: bool = False  # chunks are whole SSE events (bytes) written as they are
    gate: object = None  # a threading.Event awaited before each chunk after the first


def completion(content="Sunny, 22 degrees.", model="gpt-4o", prompt_tokens=12,
               completion_tokens=5) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def chunk(content: str | None, finish: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class FakeUpstream:
    def __init__(self, name="upstream"):
        self.name = name
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.closed_streams = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.serving = Serving(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, *replies: Reply):
        """Queue answers for the next calls; after them the default answer repeats."""
        self.replies.extend(replies)

    def close(self):
        self.serving.stop()

    def refusal(self, received: Received) -> Reply | None:
        """The answer to a request the upstream would refuse (None: it takes it); the fakes
        of stricter APIs check what they receive here."""
        return None

    def _next(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default

    def _handler_class(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                received = Received(self.command, self.path, dict(self.headers), body, raw)
                upstream.received.append(received)
                upstream._serve(self, upstream.refusal(received) or upstream._next(), body)

            do_GET = do_DELETE = do_POST

        return Handler

    def _serve(self, handler, reply: Reply, body):
        if reply.delay:
            time.sleep(reply.delay)
        if reply.chunks is not None:
            return self._stream(handler, reply)
        payload = reply.body
        if payload is None:
            payload = completion(model=(body or {}).get("model", "gpt-4o"))
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.headers.pop("Content-Type", "application/json")
                            if "Content-Type" in reply.headers else "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(reply.content_length or len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
        if reply.content_length and reply.content_length > len(data):
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)

    def _stream(self, handler, reply: Reply):
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.headers.get("Content-Type", "text/event-stream"))
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            if name != "Content-Type":
                handler.send_header(name, value)
        handler.end_headers()
        try:
            for index, item in enumerate(reply.chunks):
                if reply.drop_after is not None and index >= reply.drop_after:
                    handler.close_connection = True
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    return
                if index and reply.gate is not None and not reply.gate.wait(20):
                    raise AssertionError("the test never opened the gate")
                data = item if reply.raw_events else b"data: " + (
                    item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n\n"
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                handler.wfile.flush()
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.closed_streams += 1
            handler.close_connection = True


if __name__ == "__main__":
    # A stand-in provider for trying Teamgate by hand: python -m tests.fake_upstream [port]
    import sys

    fake = FakeUpstream()
    if len(sys.argv) > 1:
        fake.close()
        fake.server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), fake._handler_class())
    print(f"Fake OpenAI/Azure upstream on {fake.url}", flush=True)
    fake.server.serve_forever()
