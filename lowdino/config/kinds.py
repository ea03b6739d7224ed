"""The run kinds: one per config model, the one list the CLI, the service and the dashboard follow."""

from __future__ import annotations

from enum import StrEnum


class RunKind(StrEnum):
    """What a run does; `lowdino <kind>` runs it and `CONFIG_MODELS[kind]` is its config model.

    A new kind is a member here, its config model in `CONFIG_MODELS` and its `lowdino/cli/<kind>.py`.
    """

    PRETRAIN = "pretrain"
    EVAL = "eval"
    DISTILL = "distill"
    EXPORT = "export"
