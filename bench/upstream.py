"""The benchmark's fake OpenAI-compatible upstream: a bare asyncio HTTP/1.1 server that answers
at once, so that what is measured is the gateway. It speaks just enough HTTP for the clients
used here (keep-alive, Content-Length request bodies, chunked SSE responses).

A request whose body asks for "stream": true gets server-sent events (a POST to .../responses:
the Responses API's answer and events); if its model name
contains "slow" the chunks come every SLOW_INTERVAL seconds for SLOW_SECONDS, otherwise at once.
A POST to a path ending in /v1/messages is answered as Anthropic's Messages API answers (a
message, or its event stream at once), for bench/messages.py.

Usage: python upstream.py PORT [PROCESSES]   (processes share the port with SO_REUSEPORT)
"""
import asyncio
import json
import os
import socket
import sys

SLOW_INTERVAL = 0.1
SLOW_SECONDS = 5.0

COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench", "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "Hello there."}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}).encode()
CHUNK = b"data: " + json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "bench", "choices": [{"index": 0, "delta": {"content": "Hi"},
                                   "finish_reason": None}]}).encode() + b"\n\n"
DONE = b"data: [DONE]\n\n"
FAST_CHUNKS = 5


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


JSON_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n" % len(COMPLETION)) + COMPLETION
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n")
FAST_STREAM = SSE_HEAD + _chunked(CHUNK) * FAST_CHUNKS + _chunked(DONE) + b"0\r\n\r\n"
# the Responses API (POST .../responses): one answer, and a stream of the same length in events
RESPONSE = json.dumps({
    "id": "resp_bench", "object": "response", "created_at": 1700000000, "status": "completed",
    "model": "bench", "output": [{"type": "message", "id": "msg_bench", "status": "completed",
                                  "role": "assistant", "content": [
                                      {"type": "output_text", "text": "Hello there.",
                                       "annotations": []}]}],
    "usage": {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12},
}).encode()
RESPONSE_ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                   b"content-length: %d\r\n\r\n" % len(RESPONSE)) + RESPONSE
MESSAGE = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench",
    "content": [{"type": "text", "text": "Hello there."}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 3}}).encode()
MESSAGE_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n" % len(MESSAGE)) + MESSAGE


def _event(kind: str, payload: dict) -> bytes:
    """One server-sent event, chunked, as Anthropic's and the Responses API's streams name
    them (`event:` the type, repeated in the data)."""
    return _chunked(b"event: %s\ndata: %s\n\n" % (kind.encode(), json.dumps(
        {"type": kind, **payload}).encode()))


RESPONSES_STREAM = SSE_HEAD + b"".join((
    _event("response.created", {"sequence_number": 0, "response": {
        "id": "resp_bench", "status": "in_progress"}}),
    *[_event("response.output_text.delta", {
        "sequence_number": 1 + i, "item_id": "msg_bench", "output_index": 0,
        "content_index": 0, "delta": "Hi"}) for i in range(FAST_CHUNKS)],
    _event("response.completed", {"sequence_number": FAST_CHUNKS + 1,
                                  "response": json.loads(RESPONSE)}))) + b"0\r\n\r\n"
MESSAGE_STREAM = SSE_HEAD + b"".join((
    _event("message_start", {"message": {
        **json.loads(MESSAGE), "content": [], "stop_reason": None,
        "usage": {"input_tokens": 9, "output_tokens": 1}}}),
    _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    *[_event("content_block_delta", {"index": 0, "delta": {
        "type": "text_delta", "text": "Hi"}}) for _ in range(FAST_CHUNKS)],
    _event("content_block_stop", {"index": 0}),
    _event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 3}}),
    _event("message_stop", {}))) + b"0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
MODELS = json.dumps({"object": "list", "data": [{"id": "bench", "object": "model"}]}).encode()
MODELS_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                   b"content-length: %d\r\n\r\n" % len(MODELS)) + MODELS


class Upstream(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        self.busy = False  # a slow stream is being written; further requests wait in buffer

    def data_received(self, data):
        self.buffer += data
        if not self.busy:
            self._serve()

    def _serve(self):
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path = head.split(" ", 2)[:2]
            if method == "GET" and path.endswith("/models"):
                self.transport.write(MODELS_RESPONSE)
            elif method != "POST":
                self.transport.write(NOT_FOUND)
            elif path.endswith("/responses"):
                streamed = b'"stream": true' in body or b'"stream":true' in body
                self.transport.write(RESPONSES_STREAM if streamed else RESPONSE_ANSWER)
            elif path.endswith("/v1/messages"):
                streamed = b'"stream": true' in body or b'"stream":true' in body
                self.transport.write(MESSAGE_STREAM if streamed else MESSAGE_RESPONSE)
            elif b'"stream": true' in body or b'"stream":true' in body:
                if b"slow" in body:
                    self.busy = True
                    asyncio.ensure_future(self._slow_stream())
                    return
                self.transport.write(FAST_STREAM)
            else:
                self.transport.write(JSON_RESPONSE)

    async def _slow_stream(self):
        self.transport.write(SSE_HEAD)
        for _ in range(int(SLOW_SECONDS / SLOW_INTERVAL)):
            if self.transport.is_closing():
                return
            self.transport.write(_chunked(CHUNK))
            await asyncio.sleep(SLOW_INTERVAL)
        self.transport.write(_chunked(DONE) + b"0\r\n\r\n")
        self.busy = False
        self._serve()


async def serve(port: int):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    server = await asyncio.get_running_loop().create_server(Upstream, sock=sock)
    async with server:
        await server.serve_forever()


def main():
    port = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for _ in range(processes - 1):
        if os.fork() == 0:
            break
    asyncio.run(serve(port))


if __name__ == "__main__":
    main()
