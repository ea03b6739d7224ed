"""One pydantic config model per run kind; the CLI, REST API and worker all use these."""

from pydantic import BaseModel

from lowdino.config.base import DataOptions, RuntimeOptions
from lowdino.config.distill import DistillConfig
from lowdino.config.eval import EvalConfig
from lowdino.config.export import ExportConfig
from lowdino.config.kinds import RunKind
from lowdino.config.pretrain import PretrainConfig, TrainOptions

# Keyed by RunKind members, looked up with plain strings too (a StrEnum member is its string).
CONFIG_MODELS: dict[str, type[BaseModel]] = {
    RunKind.PRETRAIN: PretrainConfig,
    RunKind.EVAL: EvalConfig,
    RunKind.DISTILL: DistillConfig,
    RunKind.EXPORT: ExportConfig,
}
# A kind without a model would be offered by the API and fail in the worker: refuse to import instead.
assert set(CONFIG_MODELS) == set(RunKind), "every RunKind needs its config model in CONFIG_MODELS"

__all__ = [
    "CONFIG_MODELS",
    "DataOptions",
    "DistillConfig",
    "EvalConfig",
    "ExportConfig",
    "PretrainConfig",
    "RunKind",
    "RuntimeOptions",
    "TrainOptions",
]
