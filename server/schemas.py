"""API models every capability shares: strict request bodies, tags, the error body, Plotly figures."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f,]+$")]


# The 409 of every operation that takes a run config (server.errors: ServerStateError, OptionsConflictError).
CONFLICT_DESCRIPTION = (
    "A config the schema allows that the server refuses (the message names the field and the fix): it "
    "leads outside this server's data roots, asks for GPUs no live worker has or for more runs than its "
    "sweep limit, or breaks a rule between options that JSON Schema cannot state (local_crop_size above "
    "global_crop_size, warmup_teacher_temp_epochs above n_epochs, options merged from a sweep's base, "
    "grid and overrides or over a cloned run or a study preset that conflict, or a clone option that "
    "the original's kind lacks)."
)


class StrictBody(BaseModel):
    # Unknown top-level keys are errors, like unknown config options: a typo must not vanish silently.
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    detail: str = Field(description="One line: what is wrong and how to fix it.")
    field_errors: dict[str, str] | None = Field(
        None,
        description="Config field -> message, when the error concerns given fields (forms show them there).",
    )


class PlotlyFigure(BaseModel):
    """A Plotly figure as JSON: `Plotly.newPlot(div, data, layout)` draws it as it is."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]
