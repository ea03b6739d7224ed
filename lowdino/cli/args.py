"""argparse options generated from a config model, so flags, defaults and help never drift apart.

Every field becomes `--field-name` (plus its `cli_flags` aliases). Flags default to "not given"
(argparse.SUPPRESS) so that only what the user typed overrides the YAML file from `--config`.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Collection
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lowdino.config.loading import ModelT, build_config


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _help(info: FieldInfo) -> str:
    text = (info.description or "").replace("%", "%%")
    if info.is_required():
        return text + " [required]"
    default = info.default
    if default is not None and not isinstance(default, bool):
        if isinstance(default, list):
            default = ",".join(str(item) for item in default)
        text += f" [default: {default}]"
    return text


def add_model_arguments(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    *,
    skip: Collection[str] = (),
    default_group: str = "other",
) -> None:
    """A flag per field of `model` but those in `skip` (options the command takes in another form)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        group_name = str(extra.get("group", default_group))
        group = groups.get(group_name) or parser.add_argument_group(group_name)
        groups[group_name] = group
        flags = [*extra.get("cli_flags", []), "--" + name.replace("_", "-")]  # type: ignore[misc]
        annotation = _strip_optional(info.annotation)
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": _help(info)}
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(annotation) is Literal:
            kwargs["choices"] = list(get_args(annotation))
        elif get_origin(annotation) is list:
            # Kept as text: the model's validators split "a,b,c" so YAML lists and CLI text both work.
            kwargs["metavar"] = "A,B,..."
        elif annotation in (int, float):
            kwargs["type"] = annotation
        group.add_argument(*flags, **kwargs)


def config_from_namespace(model: type[ModelT], args: argparse.Namespace) -> ModelT:
    """The model from `--config FILE` (if given) overridden by the flags the user typed."""
    overrides = {name: value for name, value in vars(args).items() if name in model.model_fields}
    return build_config(model, file=getattr(args, "config", None), overrides=overrides)
