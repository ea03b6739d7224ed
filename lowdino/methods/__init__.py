"""Training methods by name (`METHODS`), each built from its run's config by `from_config`."""

from __future__ import annotations

from lowdino.methods.base import BackboneFactory, Method, MethodClass, TrainingNeeds
from lowdino.methods.byol import BYOL
from lowdino.methods.dino import DINO
from lowdino.methods.distill import Distillation
from lowdino.methods.registry import METHODS, UnknownMethodError, get_method

__all__ = [
    "BYOL",
    "DINO",
    "METHODS",
    "BackboneFactory",
    "Distillation",
    "Method",
    "MethodClass",
    "TrainingNeeds",
    "UnknownMethodError",
    "get_method",
]
