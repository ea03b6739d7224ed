"""METHODS: every training method by name, as solo-learn's METHODS and timm's model registry.

A method's class builds itself from its run's config (`from_config`) and declares what the trainer
must schedule for it (`training_needs`); see `lowdino.methods.base.MethodClass`. The names are those
the configs use: PretrainConfig.method ("dino", "byol"), and "distill" for DistillConfig runs.
"""

from __future__ import annotations

from lowdino.errors import ConfigError
from lowdino.methods.base import MethodClass
from lowdino.methods.byol import BYOL
from lowdino.methods.dino.method import DINO
from lowdino.methods.distill import Distillation

METHODS: dict[str, MethodClass] = {
    "dino": DINO,
    "byol": BYOL,
    "distill": Distillation,
}


class UnknownMethodError(ConfigError):
    """A method name that METHODS does not hold."""


def get_method(name: str) -> MethodClass:
    """The method class registered as `name`; an unknown name is an error, never a fallback."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; use one of {', '.join(sorted(METHODS))}"
        ) from None
