"""The request log's spool: rows the database cannot take yet, kept on local disk in append-only
JSON-lines files, in the order they were logged, until they have been written.

Each process owns the files it writes: `<owner>.lock`, held with flock for as long as the
process keeps its spool, and `<owner>-<seq>.jsonl` segments. A segment whose owner's lock
nobody holds is a leftover (its process stopped or died) and is adopted by the next writer that
looks, which takes the lock first: two processes never replay the same file. A segment is
removed once all its rows are in the database; a crash in between replays it again, and the
writer then skips the rows the database already has (see RequestLogWriter)."""
import fcntl
import json
import logging
import os
import secrets
import time
from collections import deque
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)
SEGMENT_ROWS = 20_000  # rows per file: a replayed file is removed after at most this many
FIRST_SEQ = 10 ** 11  # tail segments count up from here, head segments (prepend) count down


def write_all(fd: int, data: bytes):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def encode(row: dict) -> bytes:
    return (json.dumps(row, separators=(",", ":"),
                       default=lambda value: value.isoformat()) + "\n").encode()


def decode(line: bytes) -> dict:
    row = json.loads(line)
    if row.get("created_at"):
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


def count_lines(path: Path) -> int:
    with open(path, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


class Segment:
    """One spool file: its rows from `offset` on are still to be written."""

    def __init__(self, path: Path, rows: int, fd: int | None = None):
        self.path = path
        self.rows = rows
        self.fd = fd  # open for appending while this process still adds to it
        self.offset = 0
        self.reader = None


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory
        self.rows = 0
        self._segments: deque[Segment] = deque()
        self._owner = self._lock_fd = None
        self._adopted: dict[str, int] = {}  # a leftover's owner -> the lock we hold for it
        self._tail_seq = self._head_seq = FIRST_SEQ
        self._peeked: tuple[int, int] | None = None  # (lines, end offset) of the last peek

    def append(self, rows: list[dict]):
        """Add rows after every spooled row, fsynced before returning; raises OSError."""
        data = b"".join(encode(row) for row in rows)
        segment = self._segments[-1] if self._segments else None
        if (segment is None or segment.fd is None or segment.reader is not None
                or segment.rows >= SEGMENT_ROWS):
            self._tail_seq += 1
            segment = self._new_segment(self._tail_seq)
            self._segments.append(segment)
        size = os.fstat(segment.fd).st_size
        try:
            write_all(segment.fd, data)
            os.fsync(segment.fd)
        except OSError:
            self._undo_append(segment, size)
            raise
        segment.rows += len(rows)
        self.rows += len(rows)

    def prepend(self, rows: list[dict]):
        """Put rows before every spooled row (those still in memory at shutdown)."""
        self._head_seq -= 1
        segment = self._new_segment(self._head_seq)
        try:
            write_all(segment.fd, b"".join(encode(row) for row in rows))
            os.fsync(segment.fd)
        except OSError:
            os.close(segment.fd)
            segment.path.unlink(missing_ok=True)
            raise
        os.close(segment.fd)
        segment.fd, segment.rows = None, len(rows)
        self._segments.appendleft(segment)
        self.rows += len(rows)

    def peek(self, limit: int) -> list[dict]:
        """The oldest spooled rows, at most `limit`; they stay spooled until consume()."""
        while self._segments:
            segment = self._segments[0]
            if segment.reader is None:
                self._seal(segment)
                segment.reader = open(segment.path, "rb")
            segment.reader.seek(segment.offset)
            rows, lines = [], 0
            for line in segment.reader:
                lines += 1
                if not line.endswith(b"\n"):
                    break  # a line cut short by a crash mid-write: that row was never kept
                try:
                    rows.append(decode(line))
                except ValueError:
                    log.error("request log spool: an unreadable line in %s was skipped",
                              segment.path.name)
                if len(rows) >= limit:
                    break
            if lines:
                self._peeked = (lines, segment.reader.tell())
                if rows:
                    return rows
                self.consume()
                continue
            self._remove_head()
        return []

    def consume(self):
        """The rows of the last peek are in the database: forget them."""
        lines, offset = self._peeked
        self._peeked = None
        segment = self._segments[0]
        segment.offset = offset
        done = min(lines, segment.rows)
        segment.rows -= done
        self.rows -= done
        if os.fstat(segment.reader.fileno()).st_size <= offset:
            self._remove_head()

    def leftovers(self) -> bool:
        """Whether the folder holds spool files (of any process: a quick look, no claim)."""
        try:
            return any(name.endswith(".jsonl") for name in os.listdir(self.directory))
        except FileNotFoundError:
            return False

    def adopt_leftovers(self):
        """Take over the segments of processes that hold no lock on them any more."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        owners = ({name.rsplit("-", 1)[0] for name in names if name.endswith(".jsonl")}
                  | {name[:-5] for name in names if name.endswith(".lock")})
        owners = sorted(owners - {self._owner} - set(self._adopted))
        adopted = []
        for owner in owners:
            fd = self._claim(owner)
            if fd is None:
                continue
            segments = sorted(self.directory.glob(f"{owner}-*.jsonl"))
            if not segments:  # a lock file that its process left without segments
                (self.directory / f"{owner}.lock").unlink(missing_ok=True)
                os.close(fd)
                continue
            self._adopted[owner] = fd
            for path in segments:
                adopted.append(Segment(path, count_lines(path)))
        if adopted:
            log.info("request log: replaying %d spool file(s) left by an earlier process",
                     len(adopted))
        # older than anything this process logged, so written first
        self._segments.extendleft(reversed(adopted))
        self.rows += sum(segment.rows for segment in adopted)

    def close(self):
        """Release the files: whatever is still spooled is a leftover for the next process."""
        for segment in self._segments:
            if segment.reader is not None:
                segment.reader.close()
            self._seal(segment)
        for fd in [*self._adopted.values(), self._lock_fd]:
            if fd is not None:
                os.close(fd)
        self._segments.clear()
        self._adopted.clear()
        self._owner = self._lock_fd = self._peeked = None
        self.rows = 0

    def _claim(self, owner: str) -> int | None:
        path = self.directory / f"{owner}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # another process may have finished and removed this lock file meanwhile
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except (BlockingIOError, FileNotFoundError):
            pass
        os.close(fd)
        return None

    def _take_ownership(self):
        """A lock file appears under its name already locked, so no other process can take
        it for a leftover's in between."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(3)}"
        draft = self.directory / f".{owner}.lock.new"
        fd = os.open(draft, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(draft, self.directory / f"{owner}.lock")
        except OSError:
            os.close(fd)
            draft.unlink(missing_ok=True)
            raise
        self._owner, self._lock_fd = owner, fd

    def _new_segment(self, seq: int) -> Segment:
        if self._owner is None:
            self._take_ownership()
        path = self.directory / f"{self._owner}-{seq:012d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name survives a crash too
        finally:
            os.close(directory)
        return Segment(path, 0, fd)

    def _undo_append(self, segment: Segment, size: int):
        """A write that failed must not leave half a line for the next one to join."""
        try:
            os.ftruncate(segment.fd, size)
        except OSError:
            self._seal(segment)  # appends go to a new file; the cut line is skipped on replay

    def _seal(self, segment: Segment):
        if segment.fd is not None:
            os.close(segment.fd)
            segment.fd = None

    def _remove_head(self):
        segment = self._segments.popleft()
        if segment.reader is not None:
            segment.reader.close()
        self._seal(segment)
        self.rows -= segment.rows
        segment.path.unlink(missing_ok=True)
        owner = segment.path.name.rsplit("-", 1)[0]
        if not any(s.path.name.startswith(owner + "-") for s in self._segments):
            self._release(owner)

    def _release(self, owner: str):
        """An owner's last segment is gone: remove its lock file, then let go of the lock
        (in that order, so nobody can take the lock of a file still on disk)."""
        if owner == self._owner:
            fd, self._owner, self._lock_fd = self._lock_fd, None, None
        else:
            fd = self._adopted.pop(owner, None)
        if fd is not None:
            (self.directory / f"{owner}.lock").unlink(missing_ok=True)
            os.close(fd)
