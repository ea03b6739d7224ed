"""API models every capability shares: strict request bodies, tags, the error body, Plotly figures."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f,]+$")]


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
