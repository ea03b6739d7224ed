"""A search space: option -> a float range, an int range or a list of choices, checked before any trial.

    {"lr": {"float": [1e-4, 1e-2], "log": true}, "n_crops": {"int": [2, 8]}, "out_dim": {"choice": [64, 128]}}

`parse_space` refuses, with one line naming `space.<option>`, anything a trial would fail on later: an
option the run kind's config model does not have (or that the search itself sets), a malformed range, a
bound or choice outside the option's constraints, and corners of the space (every range at its low end,
then at its high end) that do not build a valid config together.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from lowdino.config.loading import validation_problems
from lowdino.errors import ConfigError

# Options a trial's config gets from the search, never from its space: the budget, the objective's
# monitor and split (moving the split would make trials incomparable), where the run writes.
SEARCH_OWNED_FIELDS = (
    "max_steps",
    "max_minutes",
    "knn_monitor",
    "knn_every_steps",
    "val_fraction",
    "output_dir",
    "resume",
)
RANGE_TYPES = ("float", "int")
SPEC_KEYS = frozenset({"float", "int", "choice", "log", "step"})
MAX_ALL_CORNERS = 6


class SpaceError(ConfigError):
    """A search space that cannot run; `field` is the JSON path of the culprit (space.<option>...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True)
class Param:
    """One searched option: a range (`low`..`high`, `log` scale, optional `step`) or `choices`."""

    name: str
    type: str  # "float", "int" or "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def corners(self) -> tuple[Any, Any]:
        """(its low end, its high end): the first and last choice for a list."""
        if self.type == "choice":
            return self.choices[0], self.choices[-1]
        return self.low, self.high

    def extremes(self) -> tuple[Any, ...]:
        """Every value that must be valid on its own: both bounds, or every choice."""
        return self.choices if self.type == "choice" else (self.low, self.high)

    def grid_values(self) -> list[Any] | None:
        """Every value of an int range or a list (a grid's axis); None for a float range."""
        if self.type == "choice":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low or 0), int(self.high or 0) + 1, int(self.step or 1)))
        return None


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    @property
    def names(self) -> list[str]:
        return [param.name for param in self.params]

    def grid(self) -> dict[str, list[Any]] | None:
        """Option -> every value, when the space is finite (no float range)."""
        axes = {param.name: param.grid_values() for param in self.params}
        if any(values is None for values in axes.values()):
            return None
        return {name: list(values or []) for name, values in axes.items()}

    def grid_size(self) -> int | None:
        grid = self.grid()
        if grid is None:
            return None
        size = 1
        for values in grid.values():
            size *= len(values)
        return size


def _number(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, int | float)


def _parse_param(name: str, spec: Any) -> Param:
    where = f"space.{name}"
    if not isinstance(spec, dict):
        raise SpaceError(where, 'must be {"float": [low, high]}, {"int": [low, high]} or {"choice": [...]}')
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise SpaceError(f"{where}.{unknown[0]}", "is not a range key; use float, int or choice (log, step)")
    kinds = [key for key in ("float", "int", "choice") if key in spec]
    if len(kinds) != 1:
        raise SpaceError(where, "give exactly one of float: [low, high], int: [low, high] or choice: [...]")
    kind = kinds[0]
    if kind == "choice":
        choices = spec["choice"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}.choice", "must be a non-empty list of values, e.g. [1024, 2048]")
        if "log" in spec or "step" in spec:
            raise SpaceError(where, "log and step belong to float or int ranges, not to a list of choices")
        if not all(choice is None or isinstance(choice, bool | int | float | str) for choice in choices):
            raise SpaceError(f"{where}.choice", "choices must be numbers, strings, booleans or null")
        if len({repr(choice) for choice in choices}) != len(choices):
            raise SpaceError(f"{where}.choice", "lists a value twice; give each choice once")
        return Param(name=name, type="choice", choices=tuple(choices))
    bounds = spec[kind]
    integer = kind == "int"
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(_number(b, integer=integer) for b in bounds)
    ):
        example = "[2, 8]" if integer else "[0.0001, 0.01]"
        raise SpaceError(f"{where}.{kind}", f"must be [low, high] of {kind} numbers, e.g. {example}")
    low, high = bounds
    if not low < high:
        raise SpaceError(f"{where}.{kind}", f"low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}.log", "must be true or false")
    if log and low <= 0:
        raise SpaceError(f"{where}.log", f"a log range needs low > 0 (got {low}); raise low or drop log")
    step = spec.get("step")
    if step is not None:
        if not _number(step, integer=integer) or step <= 0:
            raise SpaceError(f"{where}.step", f"must be a positive {kind} number")
        if log:
            raise SpaceError(f"{where}.step", "a log range has no step; drop one of them")
    return Param(name=name, type=kind, low=low, high=high, log=log, step=step)


def _refusal(model: type[BaseModel], values: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) of the first problem of `values` as a config of `model`, else None."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        return validation_problems(exc)[0]
    return None


def parse_space(raw: dict[str, Any], model: type[BaseModel], base: dict[str, Any]) -> SearchSpace:
    """The checked space over `base` (itself a valid config of `model`), or SpaceError naming the field."""
    if not raw:
        raise SpaceError("space", 'is empty; give at least one option, e.g. {"lr": {"float": [1e-4, 1e-2]}}')
    params = []
    for name, spec in raw.items():
        if name in SEARCH_OWNED_FIELDS:
            raise SpaceError(
                f"space.{name}", "is set by the search itself (budget, objective, run directory)"
            )
        if name not in model.model_fields:
            raise SpaceError(f"space.{name}", f"is not an option of {model.__name__} (check the spelling)")
        params.append(_parse_param(name, spec))
    for param in params:
        for value in param.extremes():
            problem = _refusal(model, {**base, param.name: value})
            if problem is not None:
                field, message = problem
                detail = message if field in (param.name, "config") else f"with it, {field}: {message}"
                raise SpaceError(f"space.{param.name}", f"{value!r} is refused: {detail}")
    # Options valid one by one can still conflict (local_crop_size above global_crop_size): try the corners.
    names = [param.name for param in params]
    corners: Any = itertools.product(*(param.corners() for param in params))
    if len(params) > MAX_ALL_CORNERS:  # 2**n corners: past that, the all-low and all-high ones only
        corners = [tuple(param.corners()[end] for param in params) for end in (0, 1)]
    for corner in corners:
        values = dict(zip(names, corner, strict=True))
        problem = _refusal(model, {**base, **values})
        if problem is not None:
            field, message = problem
            shown = ", ".join(f"{key}={value!r}" for key, value in values.items())
            culprit = field if field in names else names[0]
            raise SpaceError(f"space.{culprit}", f"the corner {shown} is refused: {message}")
    return SearchSpace(params=tuple(params))
