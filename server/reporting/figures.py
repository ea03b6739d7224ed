"""The accuracy-against-parameters figure (Plotly JSON) shared by /api/compare and /api/report.

Measured points and published points are separate traces, and never look alike: published figures
are hollow markers in a trace whose name says "published", with their source in the hover text. The
Pareto front (fewest parameters for the best accuracy) is drawn over measured points only, so a
figure copied from a paper can never move it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Point:
    """One model on the chart: parameter count (x), top-1 % (y), its label and hover extra."""

    x: float
    y: float
    text: str
    hover: str = ""
    error: float | None = None  # std over seeds, drawn as an error bar when given


def pareto_front(points: list[Point]) -> list[Point]:
    """Points no other point beats with fewer or equal parameters (or milliseconds), left to right."""
    ordered = sorted(points, key=lambda point: (point.x, -point.y))
    front: list[Point] = []
    for point in ordered:
        if not front or point.y > front[-1].y:
            front.append(point)
    return front


def accuracy_vs_params(
    measured: list[Point],
    published: list[Point],
    *,
    title: str,
    y_title: str = "top-1 (%)",
    measured_name: str = "runs (measured)",
    published_name: str = "published (not measured here)",
    with_front: bool = False,
    x_title: str = "parameters",
) -> dict[str, Any]:
    """Scatter of top-1 against parameters (log x): measured, published (hollow), optional Pareto front.

    Any cost where less is better may stand in for parameters (`x_title`): milliseconds per image draw
    the accuracy-against-latency chart, whose front is then the fastest model for its accuracy."""
    measured_trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "markers+text",
        "name": measured_name,
        "x": [point.x for point in measured],
        "y": [point.y for point in measured],
        "text": [point.text for point in measured],
    }
    if any(point.hover for point in measured):
        measured_trace["customdata"] = [point.hover for point in measured]
    if any(point.error for point in measured):
        measured_trace["error_y"] = {"type": "data", "array": [point.error or 0.0 for point in measured]}
    published_trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "markers+text",
        "name": published_name,
        "marker": {"symbol": "diamond-open"},
        "x": [point.x for point in published],
        "y": [point.y for point in published],
        "text": [point.text for point in published],
    }
    if any(point.hover for point in published):
        published_trace["customdata"] = [point.hover for point in published]
    traces = [measured_trace, published_trace]
    front = pareto_front(measured)
    if with_front and len(front) > 1:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Pareto front (measured)",
                "x": [point.x for point in front],
                "y": [point.y for point in front],
                "line": {"shape": "hv", "dash": "dash"},
                "hoverinfo": "skip",
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": x_title}, "type": "log"},
            "yaxis": {"title": {"text": y_title}},
        },
    }
