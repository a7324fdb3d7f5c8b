"""POST /v1/audio/transcriptions: a multipart upload resolved by its model field and sent upstream
as it arrives, byte for byte but for the model's value; the transcript relayed as JSON or text."""
import contextlib
import http.client
import json
import threading
from urllib.parse import urlsplit

import openai
import pytest
import requests

from tests.conftest import bearer
from tests.fake_upstream import FakeUpstream, Reply
from tests.raw_upstream import answer
from tests.test_openai_surface import PROVIDER_KEY, logged, register, sdk
from tests.test_served import MASTER, served
from webapp.proxy.uploads import Parts

AUDIO = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 40
TRANSCRIPT = {"text": "Hello there.", "usage": {"type": "tokens", "input_tokens": 14,
                                                "output_tokens": 3, "total_tokens": 17}}
BOUNDARY = "----teamgate-test-boundary"


def multipart(*parts: tuple[str, bytes, str | None]) -> bytes:
    """A multipart/form-data body of (name, value, filename) parts, in the order given."""
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename
                                                      else "")
        kind = "Content-Type: audio/wav\r\n" if filename else ""
        body += (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n"
                 ).encode() + value + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def post(client, key: str, body: bytes):
    return client.post("/v1/audio/transcriptions", data=body, headers={
        **bearer(key), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


@pytest.fixture
def team(seed):
    team_id = seed.team()
    return team_id, seed.key(team_id)


@pytest.fixture
def scribe(client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "scribe", "openai/whisper-1",
             mode="audio_transcription")
    return team_id, key


def test_transcribe_through_the_openai_client(app, live, scribe, upstream):
    team_id, key = scribe
    upstream.reply(Reply(body=TRANSCRIPT))
    text = sdk(live, key).audio.transcriptions.create(
        model="scribe", file=("speech.wav", AUDIO, "audio/wav"), language="en")
    assert text.text == "Hello there."
    call = upstream.received[-1]
    assert call.path == "/v1/audio/transcriptions"
    assert call.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(call.headers["Content-Length"]) == len(call.raw)
    assert b'name="model"\r\n\r\nwhisper-1\r\n' in call.raw
    assert b"scribe" not in call.raw
    assert AUDIO in call.raw and b'name="language"\r\n\r\nen\r\n' in call.raw
    rows = logged(app, team_id)
    assert [(r.route, r.status, r.public_model, r.prompt_tokens, r.completion_tokens)
            for r in rows] == [("/audio/transcriptions", 200, "scribe", 14, 3)]


def test_model_after_a_large_file_as_curl_sends_it(client, scribe, upstream):
    """curl -F file=@speech.wav -F model=scribe: the file comes first; what precedes the model
    field is held on disk past a megabyte, and the upstream gets the same bytes."""
    _, key = scribe
    audio = AUDIO * 150  # about 1.5 MB
    upstream.reply(Reply(body=TRANSCRIPT))
    response = post(client, key, multipart(("file", audio, "speech.wav"),
                                           ("model", b"scribe", None),
                                           ("response_format", b"json", None)))
    assert response.status_code == 200, response.json
    assert upstream.received[-1].raw == multipart(("file", audio, "speech.wav"),
                                                  ("model", b"whisper-1", None),
                                                  ("response_format", b"json", None))


def test_a_text_transcript_is_relayed_as_text(live, scribe, upstream):
    _, key = scribe
    upstream.reply(Reply(body=b"Hello there.\n", headers={"Content-Type": "text/plain"}))
    text = sdk(live, key).audio.transcriptions.create(
        model="scribe", file=("speech.wav", AUDIO), response_format="text")
    assert text.strip() == "Hello there."


def test_the_upload_reaches_the_upstream_before_the_caller_has_sent_all_of_it(
        app, live, client, team, raw):
    """The first part of the file is upstream while the caller still holds back the rest."""
    team_id, key = team
    marker = b"first-part-of-the-audio"
    head_seen, received = threading.Event(), []

    def serve(peer):
        data = b""
        while b"\r\n\r\n" not in data:
            data += peer.sock.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while marker not in body:
            body += peer.sock.recv(65536)
        head_seen.set()
        while len(body) < length:
            body += peer.sock.recv(65536)
        received.append(body)
        peer.send(answer(json.dumps({"text": "ok"}).encode()))

    upstream = raw(serve)
    register(client, key, team_id, upstream, "scribe", "openai/whisper-1",
             mode="audio_transcription")
    first_half = marker + bytes(300 * 1024)
    # above a megabyte, which the tests' canary watch (tests/canaries.py) would read whole
    body = multipart(("model", b"scribe", None), ("file", first_half + AUDIO * 150, "a.wav"))
    cut = body.index(marker) + len(first_half)
    connection = http.client.HTTPConnection(urlsplit(live.url).netloc, timeout=10)
    connection.putrequest("POST", "/v1/audio/transcriptions")
    for name, value in {**bearer(key), "Content-Length": str(len(body)),
                        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body[:cut])
    assert head_seen.wait(5), "the upstream saw nothing before the whole upload was sent"
    connection.send(body[cut:])
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read()) == {"text": "ok"}
    assert received[0] == body.replace(b"\r\n\r\nscribe\r\n", b"\r\n\r\nwhisper-1\r\n")
    connection.close()


def test_uploads_are_refused_with_the_contracts_errors(app, client, scribe, upstream):
    team_id, key = scribe
    refused = post(client, key, multipart(("model", b"scribe", None),
                                          ("api_base", b"http://attacker.example", None),
                                          ("file", AUDIO, "a.wav")))
    assert refused.status_code == 400 and refused.json["error"]["param"] == "api_base"
    missing = post(client, key, multipart(("file", AUDIO, "a.wav")))
    assert missing.status_code == 400 and missing.json["error"]["param"] == "model"
    as_json = client.post("/v1/audio/transcriptions", headers=bearer(key),
                          json={"model": "scribe", "file": "x"})
    assert as_json.status_code == 400
    assert "multipart/form-data" in as_json.json["error"]["message"]
    app.config["MAX_UPLOAD_BYTES"] = 1000
    too_large = post(client, key, multipart(("model", b"scribe", None), ("file", AUDIO, "a")))
    assert too_large.status_code == 413
    assert too_large.json["error"]["type"] == "invalid_request_error"
    assert upstream.received == []


def test_a_chat_deployment_does_not_transcribe(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "chatty", "openai/gpt-4o")
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(live, key).audio.transcriptions.create(model="chatty", file=("a.wav", AUDIO))
    assert "audio_transcription" in refused.value.response.json()["error"]["message"]
    assert upstream.received == []


def test_transcribe_on_an_azure_deployment(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "azure-scribe", "azure/whisper",
             mode="audio_transcription")
    upstream.reply(Reply(body=TRANSCRIPT))
    text = sdk(live, key).audio.transcriptions.create(model="azure-scribe",
                                                      file=("a.wav", AUDIO))
    assert text.text == "Hello there."
    call = upstream.received[-1]
    assert call.path.startswith("/openai/deployments/whisper/audio/transcriptions?api-version=")
    assert call.headers["api-key"] == PROVIDER_KEY
    assert b'name="model"\r\n\r\nwhisper\r\n' in call.raw


def test_a_streamed_transcript_is_relayed_as_events_with_its_usage_logged(app, live, scribe,
                                                                         upstream):
    team_id, key = scribe
    upstream.reply(Reply(chunks=[
        {"type": "transcript.text.delta", "delta": "Hello"},
        {"type": "transcript.text.delta", "delta": " there."},
        {"type": "transcript.text.done", "text": "Hello there.",
         "usage": {"type": "tokens", "input_tokens": 9, "output_tokens": 2,
                   "total_tokens": 11}}]))
    stream = sdk(live, key).audio.transcriptions.create(
        model="scribe", file=("a.wav", AUDIO), stream=True)
    events = [event.type for event in stream]
    assert events == ["transcript.text.delta", "transcript.text.delta", "transcript.text.done"]
    assert b'name="stream"\r\n\r\ntrue\r\n' in upstream.received[-1].raw
    rows = logged(app, team_id)
    assert [(r.status, r.stream, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        (200, True, 9, 2)]


def test_uploads_and_audio_through_gunicorn_and_gevent(tmp_path, database_url):
    """As `make run` serves them: the openai client's upload, a chunked upload (no
    Content-Length, which the upstream then gets), and speech relayed."""
    upstream = FakeUpstream()
    upstream.default = Reply(body=TRANSCRIPT)
    with contextlib.closing(upstream), served(tmp_path, database_url, workers=1) as (base, _):
        admin = bearer(MASTER)
        team_id = requests.post(base + "/team/new", json={"team_alias": "served audio"},
                                headers=admin).json()["team_id"]
        key = requests.post(base + "/key/generate", json={"team_id": team_id},
                            headers=admin).json()["key"]
        for name, model, mode in (("scribe", "openai/whisper-1", "audio_transcription"),
                                  ("voice", "openai/tts-1", "audio_speech")):
            assert requests.post(base + "/model/new", headers=bearer(key), json={
                "model_name": name, "model_info": {"team_id": team_id, "mode": mode},
                "litellm_params": {"model": model, "api_base": upstream.url + "/v1",
                                   "api_key": PROVIDER_KEY}}).status_code == 200
        gpt = openai.OpenAI(api_key=key, base_url=base + "/v1", max_retries=0)
        audio = AUDIO * 200
        text = gpt.audio.transcriptions.create(model="scribe", file=("a.wav", audio))
        assert text.text == "Hello there."
        body = multipart(("file", audio, "a.wav"), ("model", b"scribe", None))
        chunked = requests.post(base + "/v1/audio/transcriptions", data=pieces(body), headers={
            **bearer(key), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=30)
        assert chunked.status_code == 200, chunked.text
        assert upstream.received[-1].raw == body.replace(b"\r\n\r\nscribe\r\n",
                                                         b"\r\n\r\nwhisper-1\r\n")
        upstream.reply(Reply(chunks=[b"ID3", b"\xff\xfb" * 4000], raw_events=True,
                             headers={"Content-Type": "audio/mpeg"}))
        speech = gpt.audio.speech.create(model="voice", voice="alloy", input="Hi")
        assert speech.content == b"ID3" + b"\xff\xfb" * 4000
    assert AUDIO * 200 in upstream.received[0].raw


def pieces(data: bytes, size: int = 50_000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 41, 4096])
def test_the_parts_are_found_however_the_upload_is_cut_into_pieces(size):
    body = b"a preamble\r\n" + multipart(
        ("file", AUDIO + b"\r\n--" + BOUNDARY.encode()[:-1] + b"x", "a.wav"),
        ("model", b"scribe", None), ("language", "français".encode(), None))
    parts = Parts(BOUNDARY.encode(), frozenset({"api_base"}))
    for start in range(0, len(body), size):
        parts.feed(body[start:start + size])
    start, end = parts.model_span
    assert body[start:end] == b"scribe"
    assert parts.fields == {"model": "scribe", "language": "français"}
    assert parts.state == "end"
