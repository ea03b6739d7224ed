"""/api/report?runs=a,b,c (or ?sweep=ID): the original work's table regenerated, as JSON, CSV or Markdown."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from server.campaigns import queries as sweep_queries
from server.deps import SessionDep, SettingsDep
from server.reporting.export import to_csv, to_markdown
from server.reporting.report import build_report
from server.reporting.schemas import ReportPublic
from server.runs import queries as run_queries
from server.schemas import Message

router = APIRouter(tags=["report"])
MAX_RUNS = 200
# Run ids (ASCII), at most 200, 4000 characters in all: even refused values stay far below the HTTP
# server's limit on a request line (about 64 KiB: a URL-encoded character takes up to 12 bytes).
RUNS_PATTERN = r"^ ?[A-Za-z0-9_-]{1,32} ?(, ?[A-Za-z0-9_-]{1,32} ?){0,199}$"
MEDIA_TYPES = {"csv": "text/csv", "md": "text/markdown"}


def runs_of_sweep(session: Session, sweep_id: str) -> tuple[list[str], dict[str, str]]:
    """The run ids of a sweep (chained evaluations included), and the models it skipped, for its report."""
    sweep = sweep_queries.require_sweep(session, sweep_id=sweep_id)  # 404 for an unknown sweep
    return sweep_queries.sweep_run_ids(session, sweep_id=sweep_id), dict(sweep.skipped or {})


def _ids(raw: str | None) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))


@router.get(
    "/report",
    response_model=ReportPublic,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}},
            },
            "description": "The report (format=json), or the table as CSV / Markdown (a download).",
        },
        404: {"model": Message},
        422: {"model": Message},
    },
)
def report(
    session: SessionDep,
    settings: SettingsDep,
    runs: Annotated[
        str | None,
        Query(
            max_length=4000,
            pattern=RUNS_PATTERN,
            description="Comma-separated run ids (1-200): eval runs, and pretrain/distill runs (their "
            "eval runs are included).",
        ),
    ] = None,
    sweep: Annotated[
        str | None,
        Query(
            min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="A sweep's id: its runs."
        ),
    ] = None,
    format: Annotated[
        Literal["json", "csv", "md"], Query(description="json (default), csv or md (Markdown).")
    ] = "json",
) -> Any:
    """Rows = models with parameters; columns kNN, 1-NN, 10 % and 30 % labels (mean ± std over seeds),
    measured cells with their runs, published rows marked; with neither `runs` nor `sweep`, only the
    published rows."""
    ids = _ids(runs)
    skipped: dict[str, str] = {}
    if sweep is not None:
        sweep_ids, skipped = runs_of_sweep(session, sweep)
        ids = list(dict.fromkeys([*sweep_ids, *ids]))
    found = [run_queries.require_run(session, run_id=run_id) for run_id in ids[:MAX_RUNS]]
    body = build_report(session, settings, runs=found, skipped=skipped)
    if format == "json":
        return body
    text = to_csv(body) if format == "csv" else to_markdown(body)
    name = f"lowdino-report-{sweep or body.dataset}.{format}"
    return Response(
        text,
        media_type=f"{MEDIA_TYPES[format]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
