"""Config fields whose valid values a library registry knows, checked when a config is built.

A name the registry does not know is refused at submission (REST), on the command line and in a YAML
file alike, with the valid names in the message, instead of failing later inside a worker.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def registered_backbones() -> list[str]:
    # Imported here, not at module level: the registry needs torch, and reading a config must not.
    from lowdino.backbones import backbone_names

    return list(backbone_names())


def _registered_backbone(name: str) -> str:
    names = registered_backbones()
    if name not in names:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(names)} (`lowdino backbones`)")
    return name


class _RegistryNames:
    """The registry's names as the field's JSON-schema `enum` (so the schema refuses what the validator does)."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = handler(core_schema)
        return {**schema, "enum": registered_backbones()}


BackboneName = Annotated[str, AfterValidator(_registered_backbone), _RegistryNames()]
