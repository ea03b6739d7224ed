"""/api/runs/{id}/artifacts: the files of a run directory (checkpoints, results, logs) and downloads."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.deps import SessionDep, SettingsDep
from server.errors import ArtifactNotFoundError
from server.runs import queries as run_queries
from server.runs.paths import artifact_path, list_artifacts, owned_run_dir
from server.runs.schemas import ArtifactPublic, ArtifactsPublic
from server.schemas import Message

router = APIRouter(prefix="/runs/{run_id}", tags=["artifacts"])
MEDIA_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".csv": "text/csv",
    ".yaml": "text/yaml",
    ".log": "text/plain",
    ".txt": "text/plain",
}


@router.get("/artifacts", response_model=ArtifactsPublic, responses={404: {"model": Message}})
def get_artifacts(run_id: str, session: SessionDep, settings: SettingsDep) -> ArtifactsPublic:
    run = run_queries.require_run(session, run_id=run_id)
    run_dir = owned_run_dir(settings, run.output_dir)
    items = []
    for name, path in list_artifacts(run_dir) if run_dir is not None else []:
        stat = path.stat()
        items.append(
            ArtifactPublic(
                name=name, size=stat.st_size, modified_at=datetime.fromtimestamp(stat.st_mtime, UTC)
            )
        )
    return ArtifactsPublic(data=items, count=len(items))


@router.get(
    "/artifacts/{name:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        404: {
            "model": Message,
            "description": "No such run or file (a name that would leave the run directory is none of its files).",
        },
    },
)
def get_artifact(run_id: str, name: str, session: SessionDep, settings: SettingsDep) -> FileResponse:
    run = run_queries.require_run(session, run_id=run_id)
    run_dir = owned_run_dir(settings, run.output_dir)
    if run_dir is None:
        raise ArtifactNotFoundError(f"run {run_id} has no run directory; nothing to download")
    path = artifact_path(run_dir, name)
    media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media_type, filename=path.name)
