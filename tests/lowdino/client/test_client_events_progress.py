"""lowdino.client: the event-stream parser and the terminal progress line (no server needed)."""

from __future__ import annotations

import io

from lowdino.client.events import Event, parse_events
from lowdino.client.progress import ProgressDisplay, bar, duration
from lowdino.client.watch import exit_code_for


def test_parse_events_reads_ids_types_and_json_and_skips_comments() -> None:
    lines = [
        "retry: 1000",
        "",
        ": keep-alive",
        "id: 7",
        "event: metric",
        'data: {"step": 3, "points": []}',
        "",
        "id: 8",
        "event: status",
        'data: {"status":',
        'data:  "completed"}',
        "",
        "data: not json",
        "",
    ]
    assert list(parse_events(lines)) == [
        Event(7, "metric", {"step": 3, "points": []}),
        Event(8, "status", {"status": "completed"}),
        Event(8, "message", "not json"),
    ]


def test_progress_lines_in_a_pipe_say_each_tenth_once_with_eta_and_metrics() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, interactive=False, label="run1")
    display.update_run(
        {"status": "running", "progress": {"step": 0, "total_steps": 100}, "latest_metrics": {}}
    )
    for step in range(1, 101):
        display.metric_event(
            {
                "step": step,
                "total_steps": 100,
                "fraction": step / 100,
                "eta_seconds": (100 - step) * 0.5,
                "points": [{"key": "loss", "step": step, "value": 5 - step / 50}],
            }
        )
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # the status line, then one per tenth
    assert lines[5].startswith("run1  running  [############------------]  50.0 %  step 50/100  ETA 25 s")
    assert "loss 4" in lines[5]
    assert "100.0 %" in lines[-1]
    assert "loss 3" in lines[-1]


def test_progress_on_a_terminal_redraws_one_line() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, interactive=True, label="r")
    display.update_run({"status": "running", "progress": {"fraction": 0.25, "step": 1, "total_steps": 4}})
    display.finish({"status": "failed", "progress": {"fraction": 0.5}, "error": "exit code 1: out of memory"})
    text = out.getvalue()
    assert text.startswith("\r")
    assert text.count("\r") == 2  # redrawn in place: running, then failed
    assert text.count("\n") == 2  # the bar line ends once, then the error
    assert "failed" in text
    assert text.endswith("r: exit code 1: out of memory\n")


def test_helpers() -> None:
    assert duration(None) == "–"
    assert duration(42) == "42 s"
    assert duration(125) == "2 min 05 s"
    assert duration(3 * 3600 + 120) == "3 h 02 min"
    assert bar(0.5) == "[" + "#" * 12 + "-" * 12 + "]"
    assert [exit_code_for(s) for s in ("completed", "cancelled", "failed", "interrupted")] == [0, 75, 1, 1]
