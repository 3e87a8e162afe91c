"""The live view's feed: a tail of the trail's segments, as server-sent events.

A Tail remembers (segment, byte offset) and, on each poll, reads the complete
lines appended since, moving on to the next segment when one is rotated in.
Lines are sent as they are (they are JSON objects already): one SSE event per
poll carries a JSON array of every new entry, so a burst of thousands of
decisions costs one write, and the browser renders them in one frame.
"""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.audit.paths import list_segments

BACKLOG_BYTES = 64 * 1024  # what a new client sees first: the end of the last segment
MAX_BATCH_BYTES = 4 << 20  # one poll sends at most this much; the rest the next poll
POLL_S = 0.1


class Tail:
    def __init__(self, directory: Path, *, backlog: int = BACKLOG_BYTES) -> None:
        self._dir = directory
        self._index = -1
        self._offset = 0
        segments = list_segments(directory)
        if segments:
            self._index, last = segments[-1]
            try:
                size = last.stat().st_size
            except FileNotFoundError:
                size = 0
            self._offset = max(0, size - backlog)
            self._skip_partial = self._offset > 0
        else:
            self._skip_partial = False

    def _path(self, index: int) -> Path | None:
        for i, p in list_segments(self._dir):
            if i == index:
                return p
        return None

    def poll(self) -> list[bytes]:
        """New complete entry lines (raw JSON) since the last poll, decisions and lifecycle."""
        out: list[bytes] = []
        while True:
            if self._index < 0:
                segments = list_segments(self._dir)
                if not segments:
                    return out
                self._index, self._offset = segments[0][0], 0
            path = self._path(self._index)
            if path is None:
                return out
            try:
                with open(path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read(MAX_BATCH_BYTES)
            except FileNotFoundError:
                return out
            if self._skip_partial:
                nl = data.find(b"\n")
                if nl < 0:
                    return out
                self._offset += nl + 1
                data = data[nl + 1 :]
                self._skip_partial = False
            end = data.rfind(b"\n")
            if end >= 0:
                chunk = data[: end + 1]
                self._offset += end + 1
                for line in chunk.splitlines():
                    # cheap pre-filter on the type before anything is parsed: the page
                    # wants decisions and session boundaries, not checkpoints
                    if b'"type":"decision"' in line or b'"type":"session_' in line:
                        out.append(line)
            if len(data) >= MAX_BATCH_BYTES:
                return out  # more to read: the next poll
            later = [i for i, _ in list_segments(self._dir) if i > self._index]
            if not later:
                return out
            self._index, self._offset = later[0], 0  # rotated: go on in the next segment


def event_bytes(lines: list[bytes]) -> bytes:
    """One SSE `message` whose data is a JSON array of the entries."""
    return b"data: [" + b",".join(lines) + b"]\n\n"


def keepalive() -> bytes:
    return b": keepalive\n\n"


def parse(lines: list[bytes]) -> list[dict[str, object]]:
    """The entries of a poll, parsed (tests and the bench)."""
    return [json.loads(x) for x in lines]
