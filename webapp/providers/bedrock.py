"""AWS Bedrock: chat through Converse and ConverseStream, embeddings through InvokeModel (Titan
and Cohere), every call signed with SigV4 by botocore over the exact bytes that are sent."""
import json
import re
import struct
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from webapp.errors import APIError
from webapp.providers import converse
from webapp.providers import openai_shape as shape
from webapp.providers.base import Field, PreparedCall, Provider

FIELDS = (
    Field("aws_access_key_id", "AWS access key ID", required=True, max_length=128),
    Field("aws_secret_access_key", "AWS secret access key", "Write-only: stored encrypted.",
          kind="secret", required=True),
    Field("aws_session_token", "AWS session token", "Only for temporary (STS) credentials.",
          kind="secret"),
    Field("aws_region_name", "AWS region", "The region that serves the model, such as "
          "us-east-1.", required=True, max_length=64),
    Field("aws_bedrock_runtime_endpoint", "Bedrock runtime endpoint",
          "Default https://bedrock-runtime.<region>.amazonaws.com (a VPC endpoint, say); "
          "api_base works too.", kind="url"),
)
# the region becomes part of a host name: nothing but a region's letters, digits and dashes
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
PRELUDE, SMALLEST_FRAME = 12, 16
SERVICE = "bedrock"


class EventFrames:
    """Complete event-stream messages from byte chunks cut anywhere. Each frame's bytes are
    gathered once (no re-copying of what is buffered, whatever the chunking), then its prelude,
    headers and CRCs are parsed and checked by botocore."""

    def __init__(self):
        self._pending = bytearray()
        self._need = PRELUDE
        self._buffer: EventStreamBuffer | None = None

    @property
    def partial(self) -> bool:
        return bool(self._pending)

    def feed(self, chunk: bytes):
        view, pos = memoryview(chunk), 0
        while pos < len(view):
            take = min(self._need - len(self._pending), len(view) - pos)
            self._pending += view[pos:pos + take]
            pos += take
            if len(self._pending) < self._need:
                return
            if self._buffer is None:
                self._start_frame()
                continue
            self._buffer.add_data(bytes(self._pending[PRELUDE:]))
            message = self._parsed()
            self._pending, self._need, self._buffer = bytearray(), PRELUDE, None
            yield message

    def _parsed(self) -> EventStreamMessage:
        try:
            return next(self._buffer)
        except (ValueError, KeyError, IndexError, struct.error) as exc:
            # botocore's header parser meets malformed headers with these, CRCs notwithstanding
            raise ParserError(f"malformed headers: {exc.__class__.__name__}") from None

    def _start_frame(self):
        total = int.from_bytes(self._pending[:4], "big")
        if total < SMALLEST_FRAME:
            raise ParserError(f"frame length {total}")
        self._buffer = EventStreamBuffer()
        self._buffer.add_data(bytes(self._pending))
        try:  # checks the prelude's CRC and lengths, then waits for the rest
            next(self._buffer)
        except StopIteration:
            pass
        self._need = total


def _param(target, name: str, secret: bool = False) -> str:
    value = (target.secrets if secret else target.params).get(name)
    if not value:
        raise APIError(400, f"This Bedrock deployment has no {name}; set it in the model's "
                            "litellm_params.", param=f"litellm_params.{name}")
    return value


def region_of(target) -> str:
    region = _param(target, "aws_region_name")
    if not REGION.match(region):
        raise APIError(400, "aws_region_name must be an AWS region such as us-east-1.",
                       param="litellm_params.aws_region_name")
    return region


def model_id(target) -> str:
    # LiteLLM's bedrock/converse/<id> names the route; Converse is the only chat route here
    model = target.upstream_model
    return model.removeprefix("converse/")


def sign(target, url: str, data: bytes, accept: str) -> dict:
    """The headers of a SigV4-signed POST of `data` to `url` (Host is left to the transport,
    which sends the same netloc that was signed)."""
    credentials = Credentials(_param(target, "aws_access_key_id"),
                              _param(target, "aws_secret_access_key", secret=True),
                              target.secrets.get("aws_session_token") or None)
    signer = SigV4Auth(credentials, SERVICE, region_of(target))
    request = AWSRequest(method="POST", url=url, data=data, headers={
        "Content-Type": "application/json", "Accept": accept, "Host": urlsplit(url).netloc})
    # SigV4Auth.add_auth logs the canonical request at DEBUG, and the session token with it:
    # its steps are taken here through the signer's public methods, without that log
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, "
        f"Signature={signature}")
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def _embedding_family(model: str) -> str:
    if "titan-embed" in model:
        return "titan"
    if "cohere.embed" in model:
        return "cohere"
    raise APIError(400, "Bedrock embeddings are served for Titan (amazon.titan-embed-*) and "
                        "Cohere (cohere.embed-*) models.", param="model")


def embedding_request(model: str, body: dict) -> dict:
    inputs = shape.embedding_inputs(body)
    if _embedding_family(model) == "cohere":
        return {"texts": inputs, "input_type": body.get("input_type") or "search_document"}
    if len(inputs) != 1:
        raise APIError(400, "Titan embedding models take one input per call; send input as "
                            "a single string.", param="input")
    payload = {"inputText": inputs[0]}
    if body.get("dimensions") and "titan-embed-text-v2" in model:
        payload["dimensions"] = body["dimensions"]
    return payload


def embedding_response(payload: dict, model: str) -> dict:
    if "embedding" in payload:  # Titan
        return shape.embeddings(model, [payload["embedding"]],
                                payload.get("inputTextTokenCount") or 0)
    vectors = payload.get("embeddings") or []
    if isinstance(vectors, dict):  # Cohere with embedding_types
        vectors = vectors.get("float") or []
    return shape.embeddings(model, vectors, 0)


class BedrockProvider(Provider):
    name = "bedrock"
    label = "AWS Bedrock"
    model_help = "The Bedrock model id, for example anthropic.claude-3-5-sonnet-20240620-v1:0."
    fields = FIELDS
    passthrough = False

    def endpoint(self, target) -> str:
        explicit = target.params.get("aws_bedrock_runtime_endpoint") or target.api_base
        if explicit:
            return explicit.rstrip("/")
        return f"https://bedrock-runtime.{region_of(target)}.amazonaws.com"

    def upstream_url(self, target, operation: str, stream: bool = False) -> str:
        model = quote(model_id(target), safe="")
        if operation == "embeddings":
            _embedding_family(model_id(target))
            return f"{self.endpoint(target)}/model/{model}/invoke"
        action = "converse-stream" if stream else "converse"
        return f"{self.endpoint(target)}/model/{model}/{action}"

    url = upstream_url
    destination = endpoint

    def prepare(self, target, operation: str, body: dict) -> PreparedCall:
        stream = operation == "chat" and body.get("stream") is True
        payload = (converse.request(body) if operation == "chat"
                   else embedding_request(model_id(target), body))
        data = json.dumps(payload, separators=(",", ":")).encode()
        url = self.upstream_url(target, operation, stream)
        accept = "application/vnd.amazon.eventstream" if stream else "application/json"
        return PreparedCall(url, sign(target, url, data, accept), data)

    def translate_response(self, operation: str, payload: dict, model: str = "") -> dict:
        """The answer in OpenAI's shape; ValueError when it is not the shape Bedrock sends."""
        try:
            if operation == "embeddings":
                return embedding_response(payload, model)
            return converse.response(payload, model)
        except (TypeError, AttributeError, KeyError, IndexError):
            raise ValueError("not a Bedrock answer") from None

    def translate_stream(self, chunks, model: str = "",
                         outcome: shape.StreamOutcome | None = None,
                         include_usage: bool = False):
        """ConverseStream's event-stream bytes as OpenAI SSE events, ending `[DONE]`, or one
        error event when Bedrock sends an exception or the stream breaks off."""
        outcome = outcome if outcome is not None else shape.StreamOutcome()
        translator = converse.StreamTranslator(model, outcome, include_usage)
        frames = EventFrames()
        error = None
        try:
            for chunk in chunks:
                for message in frames.feed(chunk):
                    out, error = _translated(translator, message)
                    if error is not None:
                        break
                    if out:
                        yield out
                if error is not None:
                    break
        except ParserError:
            error = APIError(502, "The upstream's event stream is corrupt.")
        if error is None and (frames.partial or not translator.finished):
            error = APIError(502, "The upstream's stream ended before the answer was complete.")
        if error is not None:
            outcome.error = error
            yield shape.event(error.body())
            return
        yield shape.DONE


def _translated(translator: converse.StreamTranslator,
                message: EventStreamMessage) -> tuple[bytes | None, APIError | None]:
    headers = message.headers
    kind = headers.get(":message-type")
    if kind == "exception":
        return None, translator.exception(headers.get(":exception-type", ""), message.payload)
    if kind == "error":
        return None, APIError(502, f"Bedrock stopped the stream ({headers.get(':error-code')}).")
    if kind != "event":
        return None, APIError(502, "The upstream's event stream is corrupt.")
    try:
        return translator.event(headers.get(":event-type", ""), json.loads(message.payload)), None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        return None, APIError(502, "The upstream sent an event Teamgate cannot read.")
