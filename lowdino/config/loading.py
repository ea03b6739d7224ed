"""Layered configuration: model defaults < YAML file < explicit overrides (CLI flags or REST body).

Validation errors become one `ConfigError` line naming the field and the allowed values, e.g.
``batch_size: must be >= 1 (got 0)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lowdino.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

_CONSTRAINT_WORDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per problem; the field is "config" when the problem is not one field's."""
    problems = []
    for item in error.errors():
        field = ".".join(str(loc) for loc in item["loc"]) or "config"
        ctx = item.get("ctx") or {}
        kind = item["type"]
        if kind in _CONSTRAINT_WORDS:
            bound = next(iter(ctx.values()))
            message = f"must be {_CONSTRAINT_WORDS[kind]} {bound}"
        elif kind == "literal_error":
            message = f"must be one of {ctx.get('expected')}"
        elif kind == "extra_forbidden":
            message = "is not an option (check the spelling)"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if kind == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        problems.append((field, f"{message}{shown}"))
    return problems


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, joined with '; ' so that the whole error still fits one line."""
    return "; ".join(
        f"{field}: {message}" if field != "config" else message
        for field, message in validation_problems(error)
    )


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file {path} is not valid YAML ({exc.__class__.__name__}); fix its syntax"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of option: value, not {type(data).__name__}"
        )
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def build_config(
    model: type[ModelT], *, file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> ModelT:
    """Validate defaults < `file` < `overrides` into `model`, raising `ConfigError` on a bad value."""
    values: dict[str, Any] = {}
    if file is not None:
        values.update(read_yaml(file))
    values.update(overrides or {})
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"invalid {model.__name__}: {describe_validation_error(exc)}") from exc


def dump_config(config: BaseModel) -> str:
    """YAML text that `build_config` reads back to an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
