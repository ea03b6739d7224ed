"""/api/compare?runs=a,b,c: metrics side by side, differing hyperparameters, Plotly figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.deps import SessionDep, SettingsDep
from server.errors import InvalidRequestError
from server.reporting.compare import compare_runs
from server.reporting.compare_schemas import ComparePublic
from server.reporting.references import load_reference_rows
from server.runs import queries as run_queries
from server.schemas import Message

router = APIRouter(tags=["compare"])
MAX_RUNS = 20
# ASCII whitespace spelt out: `\s` means different sets in the schema's regex dialect (ECMA), in pydantic's
# (Unicode: NEL, no-break space...) and in str.strip(), so "\x85" was valid to a client and refused here.
BLANK = " \t\n\r\f\v"
_BLANK_CLASS = r"[ \t\n\r\f\v]"
_ITEM = rf"{_BLANK_CLASS}*[^,{_BLANK_CLASS[1:-1]}][^,]*"
RUNS_PATTERN = rf"^{_ITEM}(,{_ITEM}){{0,{MAX_RUNS - 1}}}$"


@router.get(
    "/compare", response_model=ComparePublic, responses={404: {"model": Message}, 422: {"model": Message}}
)
def compare(
    session: SessionDep,
    settings: SettingsDep,
    runs: Annotated[
        str,
        Query(
            max_length=1000,
            pattern=RUNS_PATTERN,
            description="Comma-separated run ids (1-20).",
        ),
    ],
) -> ComparePublic:
    """Final and best metrics per run, config keys that differ, and figures incl. published references."""
    ids = list(dict.fromkeys(part.strip(BLANK) for part in runs.split(",") if part.strip(BLANK)))
    if not ids or len(ids) > MAX_RUNS:
        raise InvalidRequestError(f"runs: give 1 to {MAX_RUNS} comma-separated run ids (got {len(ids)})")
    found = [run_queries.require_run(session, run_id=run_id) for run_id in ids]
    return ComparePublic.model_validate(compare_runs(session, settings, found, load_reference_rows()))
