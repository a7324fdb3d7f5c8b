"""A real HTTP server on 127.0.0.1 that plays Bedrock's runtime API.

Every request's SigV4 signature is recomputed with botocore from the credentials the fake knows
and compared, as AWS does: an unknown key, a wrong secret, a wrong region or a stale date gets
403. It answers Converse with JSON, ConverseStream with event-stream frames encoded here
(prelude, headers, CRCs), and InvokeModel with embeddings. Tests queue answers with `reply` and
read what arrived in `received`."""
import calendar
import hmac
import json
import re
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.serving import Serving

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$")
STRING_HEADER = 7
MAX_SKEW = 300  # seconds, as AWS allows


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths and their CRC), string headers, payload,
    and the CRC of everything before it."""
    encoded = b""
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded += (bytes([len(name_bytes)]) + name_bytes + bytes([STRING_HEADER])
                    + struct.pack(">H", len(value_bytes)) + value_bytes)
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, payload: dict) -> bytes:
    return frame({":event-type": kind, ":content-type": "application/json",
                  ":message-type": "event"}, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    return frame({":exception-type": kind, ":content-type": "application/json",
                  ":message-type": "exception"}, json.dumps({"message": message}).encode())


def converse_answer(text="Sunny, 22 degrees.", stop="end_turn", input_tokens=11,
                    output_tokens=6) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop, "metrics": {"latencyMs": 120},
            "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                      "totalTokens": input_tokens + output_tokens}}


def text_stream(*pieces: str, stop="end_turn") -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}})
               for p in pieces]
    frames += [event("contentBlockStop", {"contentBlockIndex": 0}),
               event("messageStop", {"stopReason": stop}),
               event("metadata", {"usage": {"inputTokens": 9, "outputTokens": 3,
                                            "totalTokens": 12}, "metrics": {"latencyMs": 80}})]
    return frames


class QuietServer(ThreadingHTTPServer):
    """A threading server that shuts down promptly and takes a client hanging up as normal."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Received:
    path: str
    headers: dict  # names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; None -> the route's default answer
    frames: list | None = None  # event-stream messages, for converse-stream
    piece_size: int | None = None  # write the stream in HTTP chunks of this many bytes
    headers: dict = field(default_factory=dict)


class FakeBedrock:
    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1",
                 session_token: str | None = None):
        self.access_key, self.secret_key = access_key, secret_key
        self.region, self.session_token = region, session_token
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.server = QuietServer(("127.0.0.1", 0), self._handler_class())
        self.serving = Serving(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, *replies: Reply):
        self.replies.extend(replies)

    def close(self):
        self.serving.stop()

    def refusal(self, path: str, headers: dict, body: bytes) -> tuple[str, str] | None:
        """(AWS error type, message) when the signature does not hold, else None."""
        match = AUTHORIZATION.match(headers.get("authorization", ""))
        if match is None:
            return "IncompleteSignatureException", "Authorization header is malformed."
        if match["key"] != self.access_key:
            return ("UnrecognizedClientException",
                    "The security token included in the request is invalid.")
        if self.session_token and headers.get("x-amz-security-token") != self.session_token:
            return ("UnrecognizedClientException",
                    "The security token included in the request is invalid.")
        stamp = headers.get("x-amz-date", "")
        if match["region"] != self.region or match["service"] != "bedrock" \
                or not stamp.startswith(match["date"]):
            return "InvalidSignatureException", "Credential should be scoped to a valid region."
        age = time.time() - calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        if abs(age) > MAX_SKEW:
            return "InvalidSignatureException", "Signature expired."
        names = match["signed"].split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "InvalidSignatureException", "Host and X-Amz-Date must be signed."
        request = AWSRequest(method="POST", url=f"http://{headers['host']}{path}", data=body,
                             headers={name: headers.get(name, "") for name in names})
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(self.access_key, self.secret_key, self.session_token),
                           "bedrock", self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, match["signature"]):
            return ("InvalidSignatureException", "The request signature we calculated does "
                    "not match the signature you provided.")
        return None

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.received.append(Received(self.path, headers, body))
                refused = fake.refusal(self.path, headers, body)
                if refused:
                    return fake._json(self, Reply(status=403, body={"message": refused[1]},
                                                  headers={"x-amzn-ErrorType": refused[0]}))
                reply = fake.replies.pop(0) if fake.replies else Reply()
                if self.path.endswith("/converse-stream") and reply.status == 200:
                    return fake._stream(self, reply)
                if reply.body is None:
                    reply.body = fake._default(self.path, json.loads(body))
                fake._json(self, reply)

        return Handler

    @staticmethod
    def _default(path: str, body: dict) -> dict:
        if path.endswith("/invoke"):
            if "texts" in body:
                return {"embeddings": [[0.1, 0.2, 0.3] for _ in body["texts"]],
                        "id": "emb-1", "response_type": "embeddings_floats"}
            return {"embedding": [0.5, -0.25, 0.125], "inputTextTokenCount": 4}
        return converse_answer()

    @staticmethod
    def _json(handler, reply: Reply):
        data = json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _stream(handler, reply: Reply):
        data = b"".join(reply.frames if reply.frames is not None else text_stream("Hi"))
        size = reply.piece_size or len(data) or 1
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.amazon.eventstream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for start in range(0, len(data), size):
                piece = data[start:start + size]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
