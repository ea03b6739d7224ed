"""Search spaces are checked against the run kind's config model before any trial exists."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lowdino.config import DistillConfig, PretrainConfig
from lowdino.search.config import SearchConfig
from lowdino.search.engine import check_sampler, trial_count
from lowdino.search.space import SpaceError, parse_space

BASE = {"dataset": "synthetic", "global_crop_size": 16, "local_crop_size": 8}
SPACE = {
    "lr": {"float": [1e-4, 1e-2], "log": True},
    "out_dim": {"choice": [64, 128, 256]},
    "n_crops": {"int": [2, 8]},
}


def test_a_valid_space_keeps_every_option_in_order() -> None:
    space = parse_space(SPACE, PretrainConfig, BASE)
    assert space.names == ["lr", "out_dim", "n_crops"]
    lr, out_dim, n_crops = space.params
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True)
    assert out_dim.choices == (64, 128, 256)
    assert n_crops.grid_values() == [2, 3, 4, 5, 6, 7, 8]
    assert space.grid() is None  # a float range has no grid


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"lrr": {"float": [0.1, 1]}}, "space.lrr", "not an option of PretrainConfig"),
        ({"lr": {"float": [0, 0.1]}}, "space.lr", "must be > 0"),
        ({"lr": {"float": [0.1, 20]}}, "space.lr", "must be <= 10"),
        ({"lr": {"float": [0.1, 0.01]}}, "space.lr.float", "must be below high"),
        ({"lr": {"float": [0, 1], "log": True}}, "space.lr.log", "low > 0"),
        ({"lr": {"range": [0, 1]}}, "space.lr.range", "not a range key"),
        ({"lr": {"float": [0.1, 1], "int": [1, 2]}}, "space.lr", "exactly one"),
        ({"n_crops": {"int": [2.5, 8]}}, "space.n_crops.int", "int numbers"),
        ({"centering": {"choice": ["center", "median"]}}, "space.centering", "'median' is refused"),
        ({"out_dim": {"choice": []}}, "space.out_dim.choice", "non-empty"),
        ({"out_dim": {"choice": [64, 64]}}, "space.out_dim.choice", "twice"),
        ({"max_steps": {"int": [10, 20]}}, "space.max_steps", "set by the search"),
        ({"val_fraction": {"float": [0.1, 0.2]}}, "space.val_fraction", "set by the search"),
        # Each bound is valid alone; a 24 px local crop above a 16 px global crop is not.
        ({"local_crop_size": {"int": [8, 24]}}, "space.local_crop_size", "must not exceed global_crop_size"),
    ],
)
def test_an_invalid_space_names_the_field_in_one_line(raw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpaceError) as caught:
        parse_space(raw, PretrainConfig, BASE)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_corners_that_conflict_together_are_refused() -> None:
    # Every value is fine alone over the base; local 12 with global 10 (both low ends) is not.
    raw = {"global_crop_size": {"int": [10, 32]}, "local_crop_size": {"int": [12, 16]}}
    with pytest.raises(SpaceError, match="the corner global_crop_size=10, local_crop_size=12 is refused"):
        parse_space(raw, PretrainConfig, {**BASE, "global_crop_size": 32})


def test_the_space_is_checked_against_the_kind_of_the_search() -> None:
    with pytest.raises(SpaceError, match="not an option of DistillConfig"):
        parse_space({"n_crops": {"int": [2, 4]}}, DistillConfig, {"dataset": "synthetic"})


def test_the_grid_sampler_needs_a_finite_space_and_stops_at_its_size() -> None:
    grid = SearchConfig(space=SPACE, budget_steps=10, sampler="grid", n_trials=100)
    with pytest.raises(SpaceError) as caught:
        check_sampler(grid, parse_space(SPACE, PretrainConfig, BASE))
    assert caught.value.field == "space.lr"
    finite = {"out_dim": {"choice": [64, 128]}, "n_crops": {"int": [2, 4]}}
    space = parse_space(finite, PretrainConfig, BASE)
    check_sampler(grid, space)
    assert trial_count(grid, space) == 6


def test_the_objective_is_the_validation_knn_and_never_test() -> None:
    config = SearchConfig(space=SPACE, budget_steps=100, reports=4)
    assert config.objective == "knn_top1"
    assert config.knn_every_steps() == 25
    with pytest.raises(ValidationError, match="objective"):
        SearchConfig(space=SPACE, budget_steps=100, objective="test_top1")  # type: ignore[arg-type]
