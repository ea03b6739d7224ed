"""/api/catalog (what can be run) and /api/schema/{kind} (JSON schema of a kind's config, for forms)."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from lowdino.config import CONFIG_MODELS
from server.http.catalog import catalog
from server.http.schemas import CatalogPublic
from server.vocabulary import RunKind

router = APIRouter(tags=["catalog"])


@functools.cache
def _catalog_public() -> CatalogPublic:
    # Built once per process, like the catalog itself: every page load asks for it.
    return CatalogPublic.model_validate(catalog())


@router.get("/catalog", response_model=CatalogPublic)
async def get_catalog() -> CatalogPublic:
    """Backbones with parameter counts, datasets, methods, presets (configs/*.yaml), published results."""
    return await run_in_threadpool(_catalog_public)


@router.get(
    "/schema/{kind}",
    responses={
        200: {"description": "A JSON Schema: the kind's config model, as in this document's components."}
    },
)
def get_schema(kind: RunKind) -> dict[str, Any]:
    """JSON schema of the kind's config model: fields, defaults, ranges, help texts, UI groups, and the
    constraints between fields (eval: exactly one of checkpoint / backbone)."""
    return CONFIG_MODELS[kind].model_json_schema()
