"""MetricsTail / LogTail: partial lines, rewrites on resume, long and carriage-return lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

from worker.tail import MAX_LINE_CHARS, LogTail, MetricsTail


def _record(step: int) -> str:
    return json.dumps({"step": step, "epoch": 0, "time": 1.0, "total_steps": 10, "loss": 1.0 / step})


def test_metrics_tail_waits_for_the_rest_of_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.poll() == []  # no file yet
    line = _record(1)
    path.write_text(line[:10])
    assert tail.poll() == []
    with path.open("a") as handle:
        handle.write(line[10:] + "\n" + _record(2)[:5])
    assert [r["step"] for r in tail.poll()] == [1]
    with path.open("a") as handle:
        handle.write(_record(2)[5:] + "\n")
    assert [r["step"] for r in tail.poll()] == [2]
    assert tail.poll() == []
    assert tail.rewinds == 0


def test_metrics_tail_starts_over_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(_record(s) + "\n" for s in range(1, 6)))
    tail = MetricsTail(path)
    assert [r["step"] for r in tail.poll()] == [1, 2, 3, 4, 5]
    # A resume keeps steps up to the checkpoint (3) and rewrites the file atomically, then appends.
    tmp = tmp_path / "new.jsonl"
    tmp.write_text("".join(_record(s) + "\n" for s in range(1, 4)))
    os.replace(tmp, path)
    with path.open("a") as handle:
        handle.write(_record(4) + "\n")
    assert [r["step"] for r in tail.poll()] == [1, 2, 3, 4]
    assert tail.rewinds == 1


def test_metrics_tail_starts_over_when_the_file_is_truncated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(_record(s) + "\n" for s in range(1, 9)))
    tail = MetricsTail(path)
    assert len(tail.poll()) == 8
    with path.open("r+") as handle:
        handle.truncate(len(_record(1)) + 1)
    assert [r["step"] for r in tail.poll()] == [1]
    assert tail.rewinds == 1


def test_metrics_tail_skips_lines_that_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    junk = ["[1, 2]", json.dumps({"no_step": 1}), json.dumps({"step": "3"}), json.dumps({"step": True})]
    path.write_text(_record(1) + "\n" + "\n".join(junk) + "\n")
    assert [r["step"] for r in MetricsTail(path).poll()] == [1]


def test_log_tail_only_reports_new_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    path.write_text("from an earlier attempt\n")
    tail = LogTail(path, keep=3)
    assert tail.poll() == []
    with path.open("a") as handle:
        handle.write("one\ntwo\nthr")
    assert tail.poll() == ["one", "two"]
    with path.open("a") as handle:
        handle.write("ee\n\n  \nfour\nfive")
    assert tail.poll() == ["three", "four"]
    assert tail.drain() == ["five"]
    assert list(tail.recent) == ["three", "four", "five"]


def test_log_tail_from_start_and_line_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    path.write_bytes(
        b"progress 10%\rprogress 50%\rprogress 100%\r\n" + b"x" * (MAX_LINE_CHARS + 50) + b"\n\xff\n"
    )
    lines = LogTail(path, start_at_end=False).poll()
    assert lines[0] == "progress 100%"
    assert len(lines[1]) < MAX_LINE_CHARS + 5
    assert lines[1].endswith("…")
    assert lines[2] == "\ufffd"


def test_log_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    tail = LogTail(tmp_path / "absent.log")
    assert tail.poll() == []
    assert tail.drain() == []
