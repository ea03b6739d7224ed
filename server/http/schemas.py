"""Response bodies of /api/health and /api/catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lowdino.eval.references import ReferenceResult
from server.vocabulary import RunKind, RunStatus


class ComponentHealth(BaseModel):
    ok: bool
    detail: str | None = None


class WorkerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    hostname: str | None
    queues: list[str]
    gpus: list[int]
    current_run_id: str | None
    last_seen: datetime
    pid: int | None


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    detail: str | None = Field(None, description="Why the status is degraded, one cause per '; '.")
    version: str
    database: ComponentHealth
    broker: ComponentHealth
    workers: list[WorkerPublic] = Field(description="Workers heard from within the heartbeat timeout.")


class BackbonePublic(BaseModel):
    """A registered backbone (lowdino.backbones.BackboneInfo, which needs torch; the API's schema must not)."""

    name: str
    family: str
    params: int = Field(description="Measured from the built network.")
    num_features: int = Field(description="Feature size D of (B, D), read from the network.")
    description: str
    pretrained_available: bool
    input_multiple: int = Field(description="Image sides must be a multiple of this (ViTs: the patch size).")
    min_input_size: int
    default_eval_size: int = Field(description="Resolution its pretrained weights were trained at.")
    timm_model_id: str | None


class PresetPublic(BaseModel):
    name: str = Field(description="File name of the recipe (configs/<name>.yaml) without .yaml.")
    kind: RunKind
    description: str = Field(description="First sentence of the recipe's header: what it is for.")
    config: dict[str, Any] = Field(description="Options of the kind's config model the recipe sets.")


class MethodsPublic(BaseModel):
    pretrain: list[str]
    distill: list[str]


class CatalogPublic(BaseModel):
    """What can be run. Rows are the library's own records (one definition each), so they cannot drift."""

    backbones: list[BackbonePublic]
    datasets: list[str]
    methods: MethodsPublic
    kinds: list[RunKind]
    statuses: list[RunStatus] = Field(description="Every run status, in lifecycle order (for filters).")
    active_statuses: list[RunStatus] = Field(description="Statuses of runs that can still be cancelled.")
    resumable_statuses: list[RunStatus] = Field(
        description="Statuses POST /api/runs/{id}/resume accepts (given a checkpoint to continue from)."
    )
    training_kinds: list[RunKind] = Field(
        description="Kinds that leave a checkpoint: the ones an `evaluate` block can be chained on."
    )
    resumable_kinds: list[RunKind] = Field(
        default_factory=list, description="Kinds that resume from their checkpoint; the others are cloned."
    )
    server_owned_fields: list[str] = Field(
        description="Config fields the server sets on REST runs; a client may not send them."
    )
    presets: list[PresetPublic]
    references: list[ReferenceResult] = Field(description="Published figures, never measured here.")
    data_bound_wait_percent: float = Field(
        description="A run whose sys_data_wait_percent (share of step time spent waiting for its next "
        "batch) is above this is data-bound: its data path, not its model, sets its speed."
    )
