"""Feature cache: hits, misses, invalidation by weights/dataset/subset, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from lowdino.eval import cache as cache_module
from lowdino.eval.cache import (
    FeatureCache,
    FeatureKey,
    default_cache_dir,
    indices_hash,
    state_dict_hash,
)
from lowdino.hashing import file_hash


def key(**changes) -> FeatureKey:
    values = {
        "model": "tiny",
        "weights_hash": "abc",
        "dataset": "synthetic",
        "split": "train",
        "image_size": 32,
    }
    return FeatureKey(**{**values, **changes})


def test_miss_then_hit(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return torch.randn(6, 4), torch.arange(6)

    first = cache.get_or_compute(key(), compute)
    second = cache.get_or_compute(key(), compute)
    assert (first[2], second[2]) == (False, True)
    assert len(calls) == 1
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert second[0].dtype == torch.float32
    assert second[1].dtype == torch.long


@pytest.mark.parametrize(
    "change",
    [
        {"weights_hash": "abd"},
        {"split": "test"},
        {"image_size": 64},
        {"subset": "x1"},
        {"dataset": "cifar10"},
    ],
)
def test_any_key_field_changes_the_entry(tmp_path, change):
    cache = FeatureCache(tmp_path)
    cache.save(key(), torch.zeros(2, 2), torch.zeros(2))
    assert cache.load(key()) is not None
    assert cache.load(key(**change)) is None


def test_weights_hash_follows_every_tensor():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    before = state_dict_hash(model)
    assert state_dict_hash(model.state_dict()) == before
    model[1].running_mean += 1e-3  # a buffer, not a parameter: must still invalidate
    after_buffer = state_dict_hash(model)
    assert after_buffer != before
    with torch.no_grad():
        model[0].weight[0, 0] += 1.0
    assert state_dict_hash(model) not in (before, after_buffer)
    half = {"w": torch.ones(2, dtype=torch.bfloat16)}
    assert state_dict_hash(half) != state_dict_hash({"w": torch.ones(2)})


def test_file_and_indices_hash(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"one")
    first = file_hash(path)
    path.write_bytes(b"two")
    assert file_hash(path) != first
    assert indices_hash(None) == "all"
    assert indices_hash(torch.tensor([1, 2])) != indices_hash(torch.tensor([1, 3]))


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)

    def fail_replace(src, dst):
        raise KeyboardInterrupt  # the user pressing Ctrl-C while the file is being renamed

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(KeyboardInterrupt):
        cache.save(key(), torch.zeros(3, 2), torch.zeros(3))
    monkeypatch.undo()
    assert cache.load(key()) is None
    assert list(tmp_path.iterdir()) == []  # no temp file left behind either


def test_corrupt_entry_is_recomputed(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.save(key(), torch.zeros(3, 2), torch.zeros(3))
    path.write_bytes(path.read_bytes()[:20])
    features, _, hit = cache.get_or_compute(key(), lambda: (torch.ones(3, 2), torch.zeros(3)))
    assert not hit
    assert torch.equal(features, torch.ones(3, 2))
    assert cache.load(key()) is not None


def test_default_dir_follows_lowdino_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "cache" / "features"
    assert FeatureCache().root == tmp_path / "cache" / "features"
    monkeypatch.delenv("LOWDINO_HOME")
    assert cache_module.lowdino_home() == Path.home() / ".lowdino"
