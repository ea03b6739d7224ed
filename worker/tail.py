"""Followers of the files a training child appends to: metrics.jsonl and stdout.log.

Both remember a byte offset and only ever hand out complete lines, so a record or log line that
the child is half-way through writing is picked up whole on a later poll.

`MetricsTail` also survives the trainer rewriting metrics.jsonl on resume (it drops records past
the checkpoint's step): when the file is replaced (new inode), shrinks below the offset, or the
byte before the offset is no longer a newline, the tail starts again from byte 0. Re-reading is
safe because metrics ingestion is idempotent per (run, step).
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from lowdino.contract.rundir import read_metrics

# A runaway child can print megabytes per second; these caps keep one poll's work and one event small.
MAX_LINE_CHARS = 2000
MAX_READ_BYTES = 1 << 20


class MetricsTail:
    """Hands out each new metrics record of one file once (modulo rewinds after a rewrite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._inode: int | None = None
        self.rewinds = 0

    def _rewound(self) -> bool:
        """True (and offset reset to 0) when the file is no longer the one the offset points into."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            if self.offset:
                self._reset()
                return True
            return False
        replaced = self._inode is not None and stat.st_ino != self._inode
        self._inode = stat.st_ino
        if self.offset == 0:
            return False
        if replaced or stat.st_size < self.offset or not self._newline_before_offset():
            self._reset()
            return True
        return False

    def _newline_before_offset(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(self.offset - 1)
            return handle.read(1) == b"\n"

    def rewind(self) -> None:
        """Hand out every record of the file again from the next `poll` (a replay after lost records)."""
        self._reset()

    def _reset(self) -> None:
        self.offset = 0
        self.rewinds += 1

    def poll(self) -> list[dict[str, Any]]:
        """Complete records appended since the last call (all of them again after a rewrite)."""
        self._rewound()
        try:
            records, self.offset = read_metrics(self.path, start_offset=self.offset)
        except json.JSONDecodeError:
            # The offset landed mid-record of a rewritten file between our stat and read: start over.
            self._reset()
            records, self.offset = read_metrics(self.path, start_offset=0)
        # Only metric records (an integer step) go to the database; anything else in the file is ignored.
        return [
            record
            for record in records
            if isinstance(record, dict)
            and isinstance(record.get("step"), int)
            and not isinstance(record["step"], bool)
        ]


class LogTail:
    """New complete lines of a log file, plus the last `keep` lines seen (for error reports)."""

    def __init__(self, path: Path, *, keep: int = 40, start_at_end: bool = True) -> None:
        self.path = path
        self.offset = path.stat().st_size if start_at_end and path.is_file() else 0
        self.recent: deque[str] = deque(maxlen=keep)

    def poll(self, *, final: bool = False) -> list[str]:
        """Lines completed since the last call; `final` also returns an unterminated last line."""
        if not self.path.is_file():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(MAX_READ_BYTES)
        end = len(chunk) if final else chunk.rfind(b"\n") + 1
        if end == 0 and len(chunk) == MAX_READ_BYTES:
            # One line longer than a whole read: hand it out in pieces rather than stall forever.
            end = len(chunk)
        self.offset += end
        lines = [line for line in map(_clean, chunk[:end].split(b"\n")) if line.strip()]
        self.recent.extend(lines)
        return lines

    def drain(self) -> list[str]:
        """Everything left, including a last line without a newline (the child has exited)."""
        lines: list[str] = []
        while True:
            before = self.offset
            lines.extend(self.poll(final=True))
            if self.offset == before:
                return lines


def _clean(raw: bytes) -> str:
    # Progress bars redraw with carriage returns; the last redraw is what a terminal would show.
    text = raw.decode("utf-8", errors="replace").rstrip("\r").rsplit("\r", 1)[-1]
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + " …"
