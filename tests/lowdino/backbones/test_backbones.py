"""Backbone registry: every backbone builds and runs, weights load, errors name cause and fix."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from lowdino.backbones import (
    backbone_names,
    check_input_size,
    count_parameters,
    create_backbone,
    get_spec,
    list_backbones,
)
from lowdino.backbones.registry import BackboneSpec
from lowdino.cli import backbones as backbones_cli
from lowdino.errors import CheckpointError, ConfigError, WeightsNotFoundError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

EXPECTED_DIMS = {
    "mobilevit_s": 640,
    "mobilevit_xs": 384,
    "mobilevit_xxs": 320,
    "mobilenetv2_035": 1280,
    "mobilenetv2_075": 1280,
    "mobilenetv2_100": 1280,
    "resnet5m": 512,
    "dinov2_vits14": 384,
    "resnet18": 512,
    "resnet50": 2048,
}
WITHOUT_TIMM_WEIGHTS = {"mobilenetv2_035", "mobilenetv2_075", "resnet5m"}
ALL = backbone_names()


@pytest.fixture(scope="module")
def built() -> dict[str, torch.nn.Module]:
    """One randomly initialised instance per backbone, shared by the tests of this module."""
    torch.manual_seed(0)
    return {name: create_backbone(name) for name in ALL}


@pytest.fixture
def empty_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_registry_holds_exactly_the_documented_backbones() -> None:
    assert set(ALL) == set(EXPECTED_DIMS)


@pytest.mark.parametrize("name", ALL)
def test_forward_at_smallest_allowed_size_gives_pooled_features(name: str, built: dict) -> None:
    model, spec = built[name], get_spec(name)
    size = spec.min_input_size
    check_input_size(name, size)
    assert model.backbone_name == name
    assert model.num_features == EXPECTED_DIMS[name]
    for mode in ("train", "eval"):
        getattr(model, mode)()
        with torch.no_grad():
            features = model(torch.rand(2, 3, size, size))
        assert features.shape == (2, EXPECTED_DIMS[name])
        assert torch.isfinite(features).all()


@pytest.mark.parametrize("name", [n for n in ALL if get_spec(n).min_input_size > 1])
def test_min_input_size_is_tight(name: str, built: dict) -> None:
    """One pixel less than the recorded minimum must really fail, so the spec is not too strict."""
    size = get_spec(name).min_input_size - 1
    with pytest.raises(Exception):  # noqa: B017, PT011  (whatever the network raises)
        built[name].eval()(torch.rand(2, 3, size, size))
    with pytest.raises(ConfigError):
        check_input_size(name, size)


def test_catalog_matches_the_real_networks(built: dict) -> None:
    rows = {row.name: row for row in list_backbones()}
    assert list(rows) == ALL
    for name, model in built.items():
        assert rows[name].params == count_parameters(model)
        assert rows[name].num_features == model.num_features
        assert rows[name].pretrained_available == (name not in WITHOUT_TIMM_WEIGHTS)
    assert list_backbones() == list_backbones()  # cached, still a fresh list each call
    assert list_backbones() is not list_backbones()


def test_resnet5m_matches_the_original_layout(built: dict) -> None:
    model = built["resnet5m"]
    assert 4_900_000 < count_parameters(model) < 5_000_000
    assert count_parameters(model) == 4_956_480
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [3, 6, 1]
    # Projection skips exactly where the shape changes: 64->128 and 128->512 (stride 2).
    projected = [name for name, _ in model.named_modules() if name.endswith("downsample.0")]
    assert projected == ["layer2.0.downsample.0", "layer3.0.downsample.0"]
    with torch.no_grad():
        feature_map = model.eval().forward_features(torch.rand(1, 3, 224, 224))
    assert feature_map.shape == (1, 512, 14, 14)


def test_mobilevit_uses_unit_range_inputs_and_others_imagenet() -> None:
    assert get_spec("mobilevit_s").mean == (0.0, 0.0, 0.0)
    assert get_spec("mobilevit_s").std == (1.0, 1.0, 1.0)
    assert get_spec("resnet5m").mean == pytest.approx((0.485, 0.456, 0.406))
    assert get_spec("dinov2_vits14").input_multiple == 14


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'mobilevit_m'") as info:
        create_backbone("mobilevit_m")
    for name in ALL:
        assert name in str(info.value)


def test_input_size_checks() -> None:
    with pytest.raises(ConfigError) as info:
        check_input_size("dinov2_vits14", 32)
    assert str(info.value) == (
        "dinov2_vits14 needs image sizes that are multiples of 14, got 32; use e.g. 28 or 224"
    )
    with pytest.raises(ConfigError, match="at least 14, got 7"):
        check_input_size("dinov2_vits14", 7)
    with pytest.raises(ConfigError, match="at least 1, got 0"):
        check_input_size("mobilevit_s", 0)
    for name, size in [("dinov2_vits14", 14), ("dinov2_vits14", 224), ("mobilevit_s", 16), ("resnet5m", 32)]:
        check_input_size(name, size)


# --- weights files ---------------------------------------------------------------------------


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ALL)
def test_weights_file_round_trip(name: str, built: dict, tmp_path: Path) -> None:
    source = built[name]
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    loaded = create_backbone(name, pretrained=True, weights=str(path))
    assert _same_weights(source, loaded)
    x = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        assert torch.equal(source.eval()(x), loaded.eval()(x))


def _wrapped(state: dict[str, torch.Tensor], kind: str) -> dict:
    head = {"head.mlp.0.weight": torch.zeros(4, 512), "head.last_layer.weight_g": torch.ones(4, 1)}
    if kind == "dino_checkpoint":  # DINO's own layout: student/teacher wrappers holding backbone + head
        teacher = {f"backbone.{k}": v for k, v in state.items()} | head
        student = {f"module.backbone.{k}": torch.zeros_like(v) for k, v in state.items()}
        return {"student": student, "teacher": teacher, "epoch": 3}
    if kind == "ddp_state_dict":
        return {"state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}
    if kind == "model_with_classifier":
        return {"model": state | {"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}}
    if kind == "backbone_key":
        return {"backbone": state}
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["dino_checkpoint", "ddp_state_dict", "model_with_classifier", "backbone_key"]
)
def test_wrapped_checkpoints_load(kind: str, built: dict, tmp_path: Path) -> None:
    source = built["resnet5m"]
    path = tmp_path / "wrapped.pth"
    torch.save(_wrapped(source.state_dict(), kind), path)
    assert _same_weights(source, create_backbone("resnet5m", weights=str(path)))


def test_safetensors_file_loads(built: dict, tmp_path: Path) -> None:
    source = built["mobilenetv2_035"]
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    assert _same_weights(source, create_backbone("mobilenetv2_035", pretrained=True, weights=str(path)))


def test_timm_checkpoint_with_classifier_and_other_resolution_loads(tmp_path: Path) -> None:
    """A DINOv2 file at 518 px (37x37 position grid) with a classifier fits our 224 px model."""
    source = timm.create_model("vit_small_patch14_dinov2", img_size=518, num_classes=7)
    path = tmp_path / "dinov2_518.pth"
    torch.save(source.state_dict(), path)
    model = create_backbone("dinov2_vits14", weights=str(path))
    assert model.pos_embed.shape == (1, 1 + 16 * 16, 384)
    assert torch.equal(model.blocks[3].attn.qkv.weight, source.blocks[3].attn.qkv.weight)
    assert model(torch.rand(1, 3, 42, 42)).shape == (1, 384)


def test_mismatched_weights_name_backbone_and_keys(built: dict, tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(built["resnet18"].state_dict(), path)
    with pytest.raises(
        CheckpointError, match=r"does not fit backbone resnet5m: missing keys .*unexpected keys"
    ):
        create_backbone("resnet5m", weights=str(path))

    path = tmp_path / "narrow.pth"
    torch.save(built["mobilenetv2_035"].state_dict(), path)
    with pytest.raises(CheckpointError, match=r"mobilenetv2_075: conv_stem.weight has shape"):
        create_backbone("mobilenetv2_075", weights=str(path))


def test_unreadable_weights_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist; pass an existing file to --weights"):
        create_backbone("resnet5m", weights=str(tmp_path / "nope.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a readable state dict"):
        create_backbone("resnet5m", weights=str(garbage))
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(CheckpointError, match="holds no tensors"):
        create_backbone("resnet5m", weights=str(empty))


# --- pretrained weights from the local Hugging Face cache ---------------------------------------


@pytest.mark.parametrize("name", [n for n in ALL if n not in WITHOUT_TIMM_WEIGHTS])
def test_missing_pretrained_weights_explain_the_fix(name: str, empty_hf_home: Path) -> None:
    spec = get_spec(name)
    with pytest.raises(WeightsNotFoundError) as info:
        create_backbone(name, pretrained=True)
    message = str(info.value)
    assert spec.hf_hub_id
    assert spec.hf_hub_id in message
    assert str(empty_hf_home / "hub") in message
    assert "--weights FILE" in message
    assert f"timm.create_model('{spec.timm_model_id}', pretrained=True)" in message
    assert "\n" not in message
    assert "HF_HUB_OFFLINE" not in os.environ  # restored (it was unset before)


@pytest.mark.parametrize("name", sorted(WITHOUT_TIMM_WEIGHTS))
def test_backbones_without_timm_weights_need_a_file(name: str, empty_hf_home: Path) -> None:
    with pytest.raises(
        WeightsNotFoundError, match=f"{name} has no pretrained weights in timm; pass --weights"
    ):
        create_backbone(name, pretrained=True)


def _fake_hf_cache(hub_dir: Path, spec: BackboneSpec, state: dict[str, torch.Tensor]) -> None:
    """The on-disk layout huggingface_hub writes for one downloaded file."""
    assert spec.hf_hub_id is not None
    repo = hub_dir / ("models--" + spec.hf_hub_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))


def test_pretrained_weights_load_from_local_hf_cache(empty_hf_home: Path) -> None:
    spec = get_spec("mobilevit_xxs")
    torch.manual_seed(1)
    published = timm.create_model("mobilevit_xxs")  # with its 1000-class classifier, as published
    _fake_hf_cache(empty_hf_home / "hub", spec, published.state_dict())
    from lowdino.backbones import pretrained_cached

    assert pretrained_cached("mobilevit_xxs")
    model = create_backbone("mobilevit_xxs", pretrained=True)
    loaded = model.state_dict()
    assert loaded.keys() <= published.state_dict().keys()
    assert all(torch.equal(v, published.state_dict()[k]) for k, v in loaded.items())
    assert model.num_features == 320
    assert model.backbone_name == "mobilevit_xxs"
    assert "HF_HUB_OFFLINE" not in os.environ


# --- CLI -------------------------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    backbones_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_lists_every_backbone(capsys: pytest.CaptureFixture[str], empty_hf_home: Path) -> None:
    assert _run_cli(["backbones", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ALL
    by_name = {row["name"]: row for row in rows}
    assert by_name["resnet5m"]["params"] == 4_956_480
    assert by_name["resnet50"]["num_features"] == 2048
    assert by_name["resnet5m"]["pretrained_available"] is False
    assert by_name["mobilevit_s"]["pretrained_cached"] is False

    assert _run_cli(["backbones"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["name", "family", "params"]
    line = next(line for line in table.splitlines() if line.startswith("resnet5m "))
    assert line.split()[:5] == ["resnet5m", "resnet", "4.96", "512", "no"]
