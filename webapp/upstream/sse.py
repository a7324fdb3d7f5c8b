"""The data of server-sent events from byte chunks cut anywhere, for streams Teamgate translates
event by event (Anthropic, Vertex AI). A line is joined once, when its end arrives, so the cost
stays linear however the bytes are chunked; a line longer than the limit is refused before it
is held whole (EventTooLarge, which webapp/upstream/failures.py words like any answer too large)."""


class EventTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"an event-stream line is larger than {limit} bytes")
        self.limit = limit


class SSEEvents:
    """Complete events' data (their `data:` lines joined) as chunks are fed."""

    def __init__(self, limit: int):
        self.limit = limit
        self._pieces: list[bytes] = []
        self._pending = 0
        self._data: list[bytes] = []

    def feed(self, chunk: bytes):
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if start < len(chunk):
                    self._pieces.append(chunk[start:])
                    self._pending += len(chunk) - start
                    if self._pending > self.limit:
                        raise EventTooLarge(self.limit)
                return
            line = chunk[start:end]
            if self._pieces:
                line, self._pieces, self._pending = b"".join(self._pieces) + line, [], 0
            start = end + 1
            yield from self._line(line.rstrip(b"\r"))

    def close(self):
        """What is left when the stream ends without a last blank line."""
        if self._pieces:
            yield from self._line(b"".join(self._pieces).rstrip(b"\r"))
            self._pieces = []
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
