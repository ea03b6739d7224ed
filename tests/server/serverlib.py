"""Helpers shared by the server tests (a plain module: `conftest` names collide across test folders)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from services import extract_cifar, free_port  # noqa: F401  (extract_cifar: re-exported)


def make_run_files(run_dir: Path, *, checkpoint: bool = True) -> None:
    """What a stopped trainer leaves behind (the worker would have written these)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text("batch_size: 16\n")
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    if checkpoint:
        (run_dir / "checkpoint.pth").write_bytes(b"not really a checkpoint")


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn (lifespan on) in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class SseEvent:
    id: int
    type: str
    data: dict


class SseReader:
    """Parses an open text/event-stream response; `take(n)` returns its next n events."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()  # one iterator: a response body can be iterated only once

    def take(self, count: int) -> list[SseEvent]:
        """httpx's read timeout bounds each wait, so a missing event fails instead of hanging."""
        events: list[SseEvent] = []
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "id" in fields:
                    events.append(SseEvent(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                    if len(events) == count:
                        return events
                fields = {}
            elif not line.startswith(":") and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        raise AssertionError(f"stream ended after {len(events)} of {count} events")
