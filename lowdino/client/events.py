"""Server-Sent Events parsed from a stream's lines (id, event, data; a blank line ends an event)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    id: int | None
    type: str
    data: Any


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    event_id: int | None = None
    event_type = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                yield Event(event_id, event_type, payload)
            event_type, data = "message", []
            continue
        if line.startswith(":"):
            continue  # a keep-alive comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id" and value.isdigit():
            event_id = int(value)
        elif field == "event":
            event_type = value
        elif field == "data":
            data.append(value)
