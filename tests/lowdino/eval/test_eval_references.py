"""Published reference figures and the tables that show them beside measured ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lowdino.eval.references import load_references
from lowdino.eval.results import EvalResults, ProtocolResult, format_markdown, format_table

SHARED_REFERENCES = Path(__file__).resolve().parents[3].parent / "shared" / "REFERENCES.md"


def test_every_row_is_published_and_sourced():
    rows = load_references()
    assert len(rows) >= 30
    for row in rows:
        assert row.published is True
        assert 0.0 < row.top1 <= 100.0
        assert 0.0 < row.label_fraction <= 1.0
        assert row.source
        assert row.citation
        assert row.where
        assert row.protocol_text
        assert "published" in row.label


def test_lowdino_table_matches_the_shared_references_file():
    """Every figure of the original work's table in REFERENCES.md is in references.json, same cell."""
    text = SHARED_REFERENCES.read_text()
    section = text.split("## The original LowDINO work", 1)[1].split("##", 1)[0]
    lines = [
        line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith(("| model", "| ---"))
    ]
    lowdino = load_references(dataset="cifar10")
    assert len(lines) == 5
    for line in lines:
        model, _params, knn, ten, thirty = (cell.strip() for cell in line.strip("|").split("|"))
        by_column = {
            (row.protocol, row.label_fraction): row.top1
            for row in lowdino
            if row.model == model and row.citation == "LowDINO README"
        }
        assert by_column == {
            ("knn_1nn_euclidean", 1.0): float(knn),
            ("mlp_probe", 0.1): float(ten),
            ("mlp_probe", 0.3): float(thirty),
        }


@pytest.mark.parametrize(
    ("dataset", "model", "protocol", "value"),
    [
        ("cifar10", "ViT-S/14 (DINOv2)", "linear", 97.7),
        ("cifar100", "ViT-S/14 (DINOv2)", "linear", 87.5),
        ("imagenet1k", "ViT-S/16 (DINO)", "knn_weighted", 74.5),
        ("cifar10", "ResNet-18 (DINO, solo-learn)", "linear_online", 89.52),
        ("cifar10", "ResNet-18 (BYOL, lightly, batch 512, 800 ep)", "knn_weighted", 91.0),
    ],
)
def test_headline_figures_from_references_md(dataset, model, protocol, value):
    rows = load_references(dataset=dataset, protocol=protocol)
    assert value in [row.top1 for row in rows if row.model == model]
    # The figure is written in the shared file as well.
    assert re.search(rf"\b{re.escape(str(value))}", SHARED_REFERENCES.read_text())


def test_filters():
    assert {row.dataset for row in load_references(dataset="cifar100")} == {"cifar100"}
    assert all(row.backbone == "resnet5m" for row in load_references(backbone="resnet5m"))
    assert load_references(dataset="synthetic") == []


def measured() -> EvalResults:
    return EvalResults(
        model="resnet5m (run x)",
        backbone="resnet5m",
        source="checkpoint",
        params=4_956_480,
        feature_dim=512,
        dataset="cifar10",
        image_size=32,
        train_size=100,
        test_size=20,
        num_classes=10,
        results=[
            ProtocolResult("knn", 1.0, [40.0], [0]),
            ProtocolResult("linear", 0.1, [50.0, 52.0, 54.0], [0, 1, 2]),
        ],
    )


def test_table_marks_published_rows_and_keeps_sources_apart():
    table = format_table([measured()], load_references(dataset="cifar10"))
    lines = table.splitlines()
    row = next(line for line in lines if line.startswith("resnet5m (run x)"))
    assert "40.00" in row
    assert "52.00 ± 2.00" in row  # mean ± sample std over three seeds
    assert row.rstrip().endswith("measured")
    assert lines[0].split()[:4] == ["model", "params", "image", "size"]
    assert " 32 px " in row  # every row names the resolution its figures were measured at
    published = [line for line in lines[2:] if not line.startswith("resnet5m (run x)")]
    assert published
    assert all("published (" in line for line in published)
    # ViT-S/14 appears in the LowDINO table and in the DINOv2 paper: two rows, never one merged row.
    vit = [line for line in published if line.startswith("ViT-S/14 (DINOv2)")]
    assert len(vit) == 2
    assert {line.rstrip().rsplit("(", 1)[1] for line in vit} == {"LowDINO README)", "DINOv2)"}


def test_markdown_table_has_the_same_rows():
    references = load_references(dataset="cifar10")
    markdown = format_markdown([measured()], references).splitlines()
    assert markdown[0].startswith("| model | params | image size |")
    assert len(markdown) == len(format_table([measured()], references).splitlines())
