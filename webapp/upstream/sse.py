"""The data of server-sent events from byte chunks cut anywhere, for streams Teamgate translates
event by event (Vertex AI). Lines come from the transport's one LineSplitter, so a line longer
than the limit is refused (AnswerTooLarge "line") before it is held whole, and the work stays
linear however the bytes are chunked."""
from webapp.upstream.transport import LineSplitter


class SSEEvents:
    """Complete events' data (their `data:` lines joined) as chunks are fed."""

    def __init__(self, limit: int):
        self._lines = LineSplitter(limit)
        self._data: list[bytes] = []

    def feed(self, chunk: bytes):
        for line in self._lines.feed(chunk):
            yield from self._line(line)

    def close(self):
        """What is left when the stream ends without a last blank line."""
        last = self._lines.end()
        if last is not None:
            yield from self._line(last)
        yield from self._line(b"")

    def _line(self, line: bytes):
        if not line:
            if self._data:
                data, self._data = b"\n".join(self._data), []
                yield data
        elif line.startswith(b"data:"):
            self._data.append(line[6:] if line[5:6] == b" " else line[5:])


def events(chunks, limit: int):
    """Each complete event's data from `chunks`, the last one too if the stream ends inside it."""
    splitter = SSEEvents(limit)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.close()
