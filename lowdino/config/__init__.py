"""One pydantic config model per run kind; the CLI, REST API and worker all use these."""

from pydantic import BaseModel

from lowdino.config.base import DataOptions, RuntimeOptions
from lowdino.config.distill import DistillConfig
from lowdino.config.eval import EvalConfig
from lowdino.config.pretrain import PretrainConfig, TrainOptions

CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "pretrain": PretrainConfig,
    "eval": EvalConfig,
    "distill": DistillConfig,
}

__all__ = [
    "CONFIG_MODELS",
    "DataOptions",
    "DistillConfig",
    "EvalConfig",
    "PretrainConfig",
    "RuntimeOptions",
    "TrainOptions",
]
