"""A real HTTP server on 127.0.0.1 that plays Google for Vertex AI and the Gemini API.

/token is an OAuth2 token endpoint for service accounts: the JWT bearer grant's assertion must be
RS256-signed by a key the fake trusts (checked with `cryptography`), for Google's token audience
and the cloud-platform scope, else 400 invalid_grant as Google answers. The model routes check their
credential as Google does (a Bearer token the fake issued for Vertex AI, `x-goog-api-key` for the
Gemini API) and answer generateContent, streamGenerateContent?alt=sse and the embeddings
methods. Tests queue answers with `reply` and read what arrived in `received`."""
import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fake_bedrock import QuietServer, Received
from tests.serving import Serving

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
VERTEX_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/"
                         r"publishers/google/models/(?P<model>[^/:]+):(?P<method>\w+)$")
GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>\w+)$")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"  # what Google requires, whatever token_uri is


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(key: rsa.RSAPrivateKey, token_uri: str, project="teamgate-test",
                    email="teamgate@teamgate-test.iam.gserviceaccount.com") -> str:
    """A service-account key file's contents, as Google's console downloads it."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "k1",
        "private_key": pem, "client_email": email, "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
        "universe_domain": "googleapis.com"})


def _segment(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def answer(text="Sunny, 22 degrees.", finish="STOP") -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": finish}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 5,
                              "totalTokenCount": 13}, "modelVersion": "gemini-1.5-pro-002"}


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; None -> the method's default answer
    events: list | None = None  # SSE payloads (dicts, or bytes sent as they are)
    piece_size: int | None = None  # write the stream in HTTP chunks of this many bytes
    headers: dict = field(default_factory=dict)


class FakeGoogle:
    def __init__(self, api_key: str | None = None, token_lifetime: int = 3600,
                 token_delay: float = 0.0):
        self.api_key, self.token_lifetime, self.token_delay = api_key, token_lifetime, token_delay
        self.trusted: dict[str, rsa.RSAPublicKey] = {}
        self.issued: dict[str, float] = {}  # access token -> expiry
        self.token_requests = 0
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        self.server = QuietServer(("127.0.0.1", 0), self._handler_class())
        self.serving = Serving(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def trust(self, email: str, key: rsa.RSAPrivateKey):
        self.trusted[email] = key.public_key()

    def reply(self, *replies: Reply):
        self.replies.extend(replies)

    def close(self):
        self.serving.stop()

    def grant(self, form: dict) -> tuple[int, dict]:
        """The token endpoint's answer to one grant."""
        with self.lock:
            self.token_requests += 1
        if self.token_delay:
            time.sleep(self.token_delay)
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Bad grant."}
        try:
            head, body, signature = form["assertion"].split(".")
            header, claims = json.loads(_segment(head)), json.loads(_segment(body))
        except (KeyError, ValueError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        public = self.trusted.get(claims.get("iss"))
        try:
            if public is None or header.get("alg") != "RS256":
                raise InvalidSignature()
            public.verify(_segment(signature), f"{head}.{body}".encode(), padding.PKCS1v15(),
                          hashes.SHA256())
        except InvalidSignature:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        now = time.time()
        if claims.get("aud") != AUDIENCE or SCOPE not in claims.get("scope", "") \
                or not claims.get("iat", 0) - 60 <= now <= claims.get("exp", 0):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."}
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        with self.lock:
            self.issued[token] = now + self.token_lifetime
        return 200, {"access_token": token, "expires_in": self.token_lifetime,
                     "token_type": "Bearer"}

    def refusal(self, path: str, headers: dict) -> tuple[int, dict] | None:
        if VERTEX_PATH.match(path):
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if self.issued.get(token, 0) > time.time():
                return None
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message":
                                   "Request had invalid authentication credentials."}}
        if GEMINI_PATH.match(path):
            if self.api_key and headers.get("x-goog-api-key") == self.api_key:
                return None
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                   "message": "API key not valid. Please pass a valid API key."}}
        return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "No such route."}}

    def _handler_class(self):
        fake = self

        class Handler(BaseHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                parts = urlsplit(self.path)
                fake.received.append(Received(self.path, headers, body))
                if parts.path == "/token":
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    return self.send_json(*fake.grant(form))
                refused = fake.refusal(parts.path, headers)
                if refused:
                    return self.send_json(*refused)
                reply = fake.replies.pop(0) if fake.replies else Reply()
                method = (VERTEX_PATH.match(parts.path)
                          or GEMINI_PATH.match(parts.path))["method"]
                if method == "streamGenerateContent" and reply.status == 200:
                    return self.send_events(reply)
                default = fake.default(method, json.loads(body))
                self.send_json(reply.status, default if reply.body is None else reply.body)

        return Handler

    @staticmethod
    def default(method: str, body: dict) -> dict:
        if method == "predict":
            return {"predictions": [{"embeddings": {"values": [0.1, 0.2],
                                                    "statistics": {"token_count": 2}}}
                                    for _ in body["instances"]]}
        if method == "batchEmbedContents":
            return {"embeddings": [{"values": [0.5, 0.5]} for _ in body["requests"]]}
        return answer()


class BaseHandler(BaseHTTPRequestHandler):
    """JSON and server-sent event answers, shared by the fake's routes."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_events(self, reply: Reply):
        events = reply.events if reply.events is not None else [answer()]
        data = b"".join(e if isinstance(e, bytes) else b"data: " + json.dumps(e).encode()
                        + b"\r\n\r\n" for e in events)
        size = reply.piece_size or len(data) or 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(data), size):
            piece = data[start:start + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
