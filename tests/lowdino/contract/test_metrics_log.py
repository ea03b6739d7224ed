"""The metrics log (lowdino/contract/metrics_log.py): writer, callbacks, truncation on resume."""

from __future__ import annotations

import json

from lowdino.contract.metrics_log import MetricsWriter, iter_records, truncate_metrics


def test_metrics_writer_callbacks_and_truncation(tmp_path) -> None:
    seen = []

    class Recorder:
        def on_metrics(self, record):
            seen.append(record)

        def should_stop(self):
            return False

    path = tmp_path / "metrics.jsonl"
    with MetricsWriter(path, callbacks=[Recorder()]) as writer:
        for step in range(1, 6):
            writer.write(
                {"step": step, "epoch": step / 5, "time": 0.0, "total_steps": 5, "loss": float("nan")}
            )
    assert [r["step"] for r in seen] == [1, 2, 3, 4, 5]
    assert seen[0]["loss"] is None  # JSON has no NaN
    with path.open("a") as handle:
        handle.write('{"step": 6, "lo')  # a crash mid-line
    assert truncate_metrics(path, 3) == 3
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert [r["step"] for r in iter_records(path)] == [1, 2, 3]
