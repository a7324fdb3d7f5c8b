"""Google's models: Vertex AI (`vertex_ai/<model>`, a service-account key per deployment) and the
Gemini API (`gemini/<model>`, an API key in a header), both through generateContent,
streamGenerateContent's server-sent events and their embeddings methods."""
import json
import re
from typing import Callable
from urllib.parse import quote, urlsplit

from webapp.errors import APIError
from webapp.providers import gemini_chat
from webapp.upstream import sse
from webapp.providers import openai_shape as shape
from webapp.providers.base import Field, PreparedCall, Provider, api_key_field
from webapp.providers.google_auth import TokenSource, app_tokens

VERTEX_FIELDS = (
    Field("vertex_project", "Google Cloud project", "Default: the service account's "
          "project_id.", max_length=64),
    Field("vertex_location", "Location", "A region such as us-central1 (the default), or "
          "global.", max_length=40),
    Field("vertex_credentials", "Service account key", "The JSON key file's contents, stored "
          "encrypted; Teamgate never falls back to the machine's own Google credentials.",
          kind="secret", required=True, max_length=16384),
    Field("api_base", "API base URL", "Leave blank for https://<location>-aiplatform."
          "googleapis.com (a Private Service Connect endpoint, say).", kind="url"),
)
GEMINI_FIELDS = (api_key_field(),)
# both become part of the host or path: letters, digits and the few marks Google allows
LOCATION = re.compile(r"^[a-z0-9-]{2,40}$")
PROJECT = re.compile(r"^[a-z0-9][a-z0-9.:-]{2,62}$")


def _stream_error(payload: dict) -> APIError:
    error = payload.get("error")
    error = error if isinstance(error, dict) else {"message": str(error)}
    status = error.get("code") if isinstance(error.get("code"), int) else 502
    return shape.stream_failure(status, str(error.get("message") or error.get("status") or ""))


class _Google(Provider):
    """What Vertex AI and the Gemini API share: the bodies and how answers come back."""
    passthrough = False

    def auth_headers(self, target) -> dict:
        raise NotImplementedError

    def embedding_request(self, target, body: dict) -> dict:
        raise NotImplementedError

    def upstream_url(self, target, operation: str, stream: bool = False) -> str:
        raise NotImplementedError

    def url(self, target, operation: str) -> str:
        return self.upstream_url(target, operation)

    def model(self, target) -> str:
        return quote(target.upstream_model.removeprefix("models/"), safe="@")

    def prepare(self, target, operation: str, body: dict) -> PreparedCall:
        stream = operation == "chat" and body.get("stream") is True
        payload = (gemini_chat.request(body) if operation == "chat"
                   else self.embedding_request(target, body))
        url = self.upstream_url(target, operation, stream)
        headers = {"Content-Type": "application/json", **self.auth_headers(target)}
        return PreparedCall(url, headers, payload)

    def translate_response(self, operation: str, payload: dict, model: str = "") -> dict:
        """The answer in OpenAI's shape; ValueError when it is not the shape Google sends."""
        try:
            if operation == "chat":
                return gemini_chat.response(payload, model)
            return _embeddings(payload, model)
        except (TypeError, AttributeError, KeyError, IndexError):
            raise ValueError("not a Google answer") from None

    def translate_stream(self, chunks, model: str = "",
                         outcome: shape.StreamOutcome | None = None,
                         include_usage: bool = False):
        """streamGenerateContent's events as OpenAI SSE events, ending `[DONE]`, or one error
        event when Google reports an error or the stream breaks off."""
        outcome = outcome if outcome is not None else shape.StreamOutcome()
        translator = gemini_chat.StreamTranslator(model, outcome, include_usage)
        error = None
        try:
            for data in sse.events(chunks, outcome.line_limit):
                payload = json.loads(data)
                if not isinstance(payload, dict):
                    raise ValueError("not an object")
                if "error" in payload:
                    error = _stream_error(payload)
                    break
                yield from translator.event(payload)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            error = APIError(502, "The upstream sent an event Teamgate cannot read.")
        if error is None and translator.finish is None:
            error = APIError(502, "The upstream's stream ended before the answer was complete.")
        if error is not None:
            outcome.error = error
            yield shape.event(error.body())
            return
        yield from translator.end()
        yield shape.DONE


def _embeddings(payload: dict, model: str) -> dict:
    if "predictions" in payload:  # Vertex AI's predict
        found = [(p.get("embeddings") or {}) for p in payload["predictions"]]
        return shape.embeddings(model, [e.get("values") or [] for e in found], sum(
            (e.get("statistics") or {}).get("token_count") or 0 for e in found))
    vectors = payload.get("embeddings") or [payload.get("embedding") or {}]
    return shape.embeddings(model, [v.get("values") or [] for v in vectors], 0)


def _method(operation: str, stream: bool, embeddings: str) -> str:
    if operation == "embeddings":
        return embeddings
    return "streamGenerateContent" if stream else "generateContent"


class VertexAIProvider(_Google):
    name = "vertex_ai"
    label = "Google Vertex AI"
    model_help = "As Vertex AI names it, for example gemini-1.5-pro."
    aliases = ("vertex_ai_beta",)
    fields = VERTEX_FIELDS

    def __init__(self, tokens: Callable[[], TokenSource] = app_tokens):
        self.tokens = tokens

    def _credentials(self, target) -> str:
        text = target.secrets.get("vertex_credentials")
        if not text:
            raise APIError(400, "This Vertex AI deployment has no vertex_credentials; set the "
                                "service account's JSON key.",
                           param="litellm_params.vertex_credentials")
        return text if isinstance(text, str) else json.dumps(text)

    def _project(self, target) -> str:
        project = target.params.get("vertex_project")
        if not project and target.secrets.get("vertex_credentials"):
            try:
                project = json.loads(self._credentials(target)).get("project_id")
            except (ValueError, AttributeError):
                project = None
        if not isinstance(project, str) or not PROJECT.match(project):
            raise APIError(400, "Set vertex_project to the Google Cloud project id.",
                           param="litellm_params.vertex_project")
        return project

    def _location(self, target) -> str:
        location = target.params.get("vertex_location") or "us-central1"
        if not LOCATION.match(location):
            raise APIError(400, "vertex_location must be a location such as us-central1.",
                           param="litellm_params.vertex_location")
        return location

    def destination(self, target) -> str:
        base = (target.api_base or "").rstrip("/")
        if base:
            return base
        location = self._location(target)
        host = "aiplatform" if location == "global" else f"{location}-aiplatform"
        return f"https://{host}.googleapis.com"

    def upstream_url(self, target, operation: str, stream: bool = False) -> str:
        method = _method(operation, stream, "predict")
        query = "?alt=sse" if stream else ""
        base = self.destination(target)
        if urlsplit(base).path:  # as LiteLLM: an api_base with a path is the model's URL
            return f"{base}:{method}{query}"
        location = self._location(target)
        return (f"{base}/v1/projects/{self._project(target)}/locations/{location}/publishers/"
                f"google/models/{self.model(target)}:{method}{query}")

    def auth_headers(self, target) -> dict:
        return {"Authorization": "Bearer " + self.tokens().token(self._credentials(target))}

    def embedding_request(self, target, body: dict) -> dict:
        payload: dict = {"instances": [{"content": text}
                                       for text in shape.embedding_inputs(body)]}
        if body.get("dimensions"):
            payload["parameters"] = {"outputDimensionality": body["dimensions"]}
        return payload


class GeminiProvider(_Google):
    name = "gemini"
    label = "Google Gemini API"
    model_help = "As the Gemini API names it, for example gemini-1.5-flash."
    fields = GEMINI_FIELDS
    default_api_base = "https://generativelanguage.googleapis.com/v1beta"

    def upstream_url(self, target, operation: str, stream: bool = False) -> str:
        method = _method(operation, stream, "batchEmbedContents")
        return (f"{self.base(target)}/models/{self.model(target)}:{method}"
                + ("?alt=sse" if stream else ""))

    def auth_headers(self, target) -> dict:
        key = target.secrets.get("api_key")
        if not key:
            raise APIError(400, "This Gemini deployment has no api_key.",
                           param="litellm_params.api_key")
        return {"x-goog-api-key": key}  # a header: a key in the URL would end up in logs

    def embedding_request(self, target, body: dict) -> dict:
        extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
        return {"requests": [{"model": f"models/{target.upstream_model.removeprefix('models/')}",
                              "content": {"parts": [{"text": text}]}, **extra}
                             for text in shape.embedding_inputs(body)]}
