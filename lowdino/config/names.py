"""Config fields whose valid values a library registry knows, checked when a config is built.

A name the registry does not know is refused at submission (REST), on the command line and in a YAML
file alike, with the valid names in the message, instead of failing later inside a worker.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _registered_backbone(name: str) -> str:
    # Imported here, not at module level: the registry needs torch, and reading a config must not.
    from lowdino.backbones import backbone_names

    names = backbone_names()
    if name not in names:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(names)} (`lowdino backbones`)")
    return name


BackboneName = Annotated[str, AfterValidator(_registered_backbone)]
