"""OpenAI's audio: POST /v1/audio/speech (text in, audio bytes out, relayed as they arrive) on
`audio_speech` deployments, and POST /v1/audio/transcriptions (a multipart upload, sent on as it
arrives; a transcript out, JSON or text) on `audio_transcription` deployments. Either may
answer with server-sent events instead (stream_format "sse", stream true): then tokens are read
from its last event."""
from webapp.errors import APIError
from webapp.operations.base import Operation, require
from webapp.operations.images import token_usage


class Speech(Operation):
    name = "speech"
    paths = ("/v1/audio/speech", "/audio/speech")
    summary = "Text to speech (OpenAI's shape): the audio is relayed as it arrives."
    body_schema = {
        "type": "object", "required": ["model", "input", "voice"],
        "properties": {"model": {"type": "string"}, "input": {"type": "string"},
                       "voice": {"type": ["string", "object"]},
                       "response_format": {"type": ["string", "null"]}},
    }
    stream_end = None
    modes = ("audio_speech",)
    deployment_path = "audio/speech"
    raw_answer = True
    audio_answer = True

    def check(self, body: dict):
        require(body, "voice")
        if not isinstance(body.get("input"), str) or not body["input"]:
            raise APIError(400, "input must be a non-empty string.", param="input")

    def usage(self, payload: dict) -> dict | None:
        return token_usage(payload)


class Transcriptions(Operation):
    name = "transcriptions"
    paths = ("/v1/audio/transcriptions", "/audio/transcriptions")
    summary = ("Speech to text (OpenAI's shape): a multipart/form-data upload with file and "
               "model, sent upstream as it arrives.")
    body_schema = {
        "type": "object", "required": ["model", "file"],
        "properties": {"model": {"type": "string"},
                       "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                       "response_format": {"type": "string"}},
    }
    stream_end = None
    modes = ("audio_transcription",)
    deployment_path = "audio/transcriptions"
    multipart = True
    raw_answer = True

    def usage(self, payload: dict) -> dict | None:
        return token_usage(payload)
