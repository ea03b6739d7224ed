"""/api/runs/{id}/metrics (downsampled series for charts) and /metrics.csv (every raw point)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from server.deps import SessionDep
from server.metrics import queries as metric_queries
from server.metrics.downsample import downsample_series
from server.metrics.schemas import MetricSeriesPublic, MetricsPublic
from server.runs import queries as run_queries
from server.schemas import Message

router = APIRouter(prefix="/runs/{run_id}", tags=["metrics"])
# Plain download links cannot send headers: this router also takes ?token= or the cookie (server.http.router).
download_router = APIRouter(prefix="/runs/{run_id}", tags=["metrics"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "No run with this id."}}


def _keys(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    return [key.strip() for key in raw.split(",") if key.strip()][:50]


@router.get("/metrics", response_model=MetricsPublic, responses=NOT_FOUND)
def get_metrics(
    run_id: str,
    session: SessionDep,
    keys: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated keys; default all.")
    ] = None,
    max_points: Annotated[int, Query(ge=10, le=100_000, description="Per series.")] = 1500,
    x: Annotated[Literal["step", "epoch", "time"], Query()] = "step",
    start: Annotated[float | None, Query(description="Smallest x to include.")] = None,
    end: Annotated[float | None, Query(description="Largest x to include.")] = None,
) -> MetricsPublic:
    """Each series downsampled to <= max_points, always keeping its first, last, min and max points."""
    run_queries.require_run(session, run_id=run_id)
    wanted = _keys(keys) or metric_queries.metric_keys(session, run_id=run_id)
    series = []
    for key in wanted:
        found = downsample_series(
            session, run_id=run_id, key=key, max_points=max_points, x=x, start=start, end=end
        )
        series.append(
            MetricSeriesPublic(
                key=key, x=found.x(x), y=found.values, step=found.steps, downsampled=found.downsampled
            )
        )
    return MetricsPublic(run_id=run_id, x=x, max_points=max_points, series=series)


@download_router.get(
    "/metrics.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "key,step,epoch,time,value rows"},
        **NOT_FOUND,
    },
)
def get_metrics_csv(
    run_id: str,
    request: Request,
    keys: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated keys; default all.")
    ] = None,
) -> StreamingResponse:
    """Every stored point, streamed as CSV (key, step, epoch, time, value), ordered by key then step."""
    # Short-lived sessions only: a request-scoped one would hold a connection for the whole download.
    factory = request.app.state.session_factory
    with factory() as session:
        run_queries.require_run(session, run_id=run_id)
    wanted = _keys(keys)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["key", "step", "epoch", "time", "value"])
        with factory() as stream_session:
            for count, row in enumerate(
                metric_queries.iter_points(stream_session, run_id=run_id, keys=wanted), 1
            ):
                writer.writerow(
                    ["" if item is None else repr(item) if isinstance(item, float) else item for item in row]
                )
                if count % 2000 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    headers = {"Content-Disposition": f'attachment; filename="{run_id}-metrics.csv"'}
    return StreamingResponse(rows(), media_type="text/csv", headers=headers)
