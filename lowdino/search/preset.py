"""A search's best recipe as a preset: the config YAML under a header saying how it was found.

The header is what keeps a tuned recipe honest: which search, how many trials, the objective (the
validation split's kNN, never test) and the budget each trial had, so nobody mistakes it for a recipe
tuned on the test split or for the result of a full-length run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from lowdino.search.config import SearchConfig


@dataclass(frozen=True)
class Provenance:
    search: str  # the search id (service) or study file (CLI)
    trial: int
    trials: int  # trials finished (completed or pruned) when the preset was written
    pruned: int
    value: float
    config: SearchConfig


def header(found: Provenance) -> list[str]:
    c = found.config
    return [
        f"Found by recipe search {found.search}: trial {found.trial}, the best of {found.trials} trials "
        f"({found.pruned} pruned).",
        f"Objective: validation kNN top-1 (the test split was not looked at) = {found.value:.2f} % after "
        f"{c.budget()} per trial; sampler {c.sampler}, pruner {c.pruner}, seed {c.seed}.",
        "A full-length run of this recipe, evaluated once on the test split, is the figure to quote.",
    ]


def preset_text(model: type[BaseModel], options: dict[str, Any], found: Provenance) -> str:
    """YAML that `lowdino <kind> --config` reads: the options given (validated by `model`), under the header."""
    config = model.model_validate(options)
    explicit = config.model_dump(mode="json", include=set(options))
    lines = "".join(f"# {line}\n" for line in header(found))
    return lines + yaml.safe_dump(explicit, sort_keys=False)
