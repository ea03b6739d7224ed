"""CIFAR-10 comparison table this machine can afford, beside the published figures.

    .venv/bin/python benchmarks/eval_table.py                       # random-init mobilevit_xxs, resnet5m
    .venv/bin/python benchmarks/eval_table.py --checkpoint runs/pretrain-mobilevit_xxs-.../checkpoint.pth
    .venv/bin/python benchmarks/eval_table.py --baselines mobilevit_xxs,mobilenetv2_100 --markdown table.md

Images come from the shared CIFAR-10 JPEG zip (../shared/datasets/cifar10-jpeg.zip): the first
``--train-per-class`` / ``--test-per-class`` images of every class are extracted once into
``--data-root`` (an image folder) so that a CPU run stays affordable; ``--train-per-class 5000
--test-per-class 1000`` is the full dataset. Every model gets weighted kNN (k=20, T=0.07) and a
linear probe at 10 % / 30 % of the training labels (stratified, the same images for every model).
Pretrained baselines run only when their weights are already in the local Hugging Face cache.

Image sizes: pretrained baselines run at the resolution their weights were trained at (the
backbone's declared size: 224 px, MobileViT 256 px), and also at the size the original LowDINO work
evaluated CIFAR-10 at (its notebooks: 32-56 px; here the native 32 px, 56 px for patch-14 ViTs),
side by side; random-init networks and checkpoints of our CIFAR runs run at the native 32 px they
were trained at. Every row of the table and of the JSON names its image size and why
(``size_rule``).

Prints one JSON object: the measured rows (``"measured": true``) and the published CIFAR-10 rows
(``"published": true``), and writes the same table as markdown with ``--markdown FILE``. Published
rows were measured elsewhere under other protocols (see each row's protocol_text); they are context,
not a like-for-like comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

from lowdino.backbones import get_spec, pretrained_cached
from lowdino.config import EvalConfig
from lowdino.config.loading import build_config
from lowdino.eval.cache import lowdino_home
from lowdino.eval.references import load_references
from lowdino.eval.results import EvalResults, format_markdown, format_table
from lowdino.eval.runner import evaluate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
RANDOM_INIT = ("mobilevit_xxs", "resnet5m")
NATIVE_SIZE = 32  # CIFAR-10


def original_work_size(backbone: str) -> int:
    """The CIFAR-10 evaluation size of the original work (32-56 px): native, or the smallest
    multiple of the patch size that holds it (patch-14 ViTs: 56, as 42 would crop the range)."""
    spec = get_spec(backbone)
    if spec.input_multiple == 1:
        return NATIVE_SIZE
    return max(56, math.ceil(NATIVE_SIZE / spec.input_multiple) * spec.input_multiple)


def plan_runs(
    checkpoints: list[str], random_init: list[str], baselines: list[str]
) -> list[dict[str, object]]:
    """EvalConfig overrides of every row, with ``size_rule`` saying why the row has its image size."""
    runs: list[dict[str, object]] = [
        {"checkpoint": path, "image_size": None, "size_rule": "native (trained at it)"}
        for path in checkpoints
    ]
    runs += [{"backbone": name, "image_size": None, "size_rule": "native"} for name in random_init]
    for name in baselines:
        declared = get_spec(name).default_eval_size
        runs.append(
            {
                "backbone": name,
                "pretrained": True,
                "image_size": declared,
                "size_rule": "declared (pretraining)",
            }
        )
        original = original_work_size(name)
        if original != declared:
            runs.append(
                {"backbone": name, "pretrained": True, "image_size": original, "size_rule": "original work"}
            )
    return runs


def extract_subset(archive: Path, root: Path, train_per_class: int, test_per_class: int) -> Path:
    """root/<train>-<test>/{train,test}/<class>/*.jpg with the first N images of each class."""
    target = root / f"{train_per_class}-{test_per_class}"
    done = target / ".complete"
    if done.exists():
        return target
    if not archive.is_file():
        raise SystemExit(f"CIFAR-10 zip {archive} not found; pass --zip PATH")
    limits = {"train": train_per_class, "test": test_per_class}
    with zipfile.ZipFile(archive) as source:
        names = sorted(name for name in source.namelist() if name.endswith(".jpg"))
        taken: dict[tuple[str, str], int] = {}
        for name in names:
            _, split, label, filename = name.split("/")
            count = taken.get((split, label), 0)
            if split not in limits or count >= limits[split]:
                continue
            taken[(split, label)] = count + 1
            destination = target / split / label / filename
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read(name))
    done.touch()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", action="append", default=[], help="run checkpoint (repeatable)")
    parser.add_argument(
        "--random-init",
        default=",".join(RANDOM_INIT),
        help="backbones to evaluate with random weights (the floor a pretraining must beat); '' for none",
    )
    parser.add_argument(
        "--baselines",
        default="mobilevit_xxs,mobilenetv2_100",
        help="pretrained backbones to evaluate when their weights are cached (e.g. add dinov2_vits14)",
    )
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="the CIFAR-10 JPEG zip")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="where to extract (default $LOWDINO_HOME)"
    )
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seeds", default="0", help="label-subset / probe seeds, e.g. 0,1,2")
    parser.add_argument("--linear-epochs", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "eval-table")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table as markdown here")
    args = parser.parse_args()

    root = args.data_root or lowdino_home() / "datasets" / "cifar10-jpeg"
    data_path = extract_subset(args.zip, root, args.train_per_class, args.test_per_class)

    base = {
        "dataset": "imagefolder",
        "data_path": str(data_path),
        "protocols": "knn,linear",
        "knn_protocol": "both",  # 1-NN too: the original LowDINO table's kNN column
        "label_fractions": "0.1,0.3",
        "seeds": args.seeds,
        "linear_epochs": args.linear_epochs,
        "device": args.device,
    }
    baselines = [name for name in filter(None, args.baselines.split(",")) if pretrained_cached(name)]
    skipped = [name for name in filter(None, args.baselines.split(",")) if name not in baselines]
    if skipped:
        print(f"[eval_table] skipped (weights not in the local cache): {', '.join(skipped)}", file=sys.stderr)
    runs = plan_runs(args.checkpoint, list(filter(None, args.random_init.split(","))), baselines)

    measured: list[EvalResults] = []
    size_rules: list[str] = []
    for index, model in enumerate(runs):
        overrides = {key: value for key, value in model.items() if key != "size_rule"}
        name = model.get("backbone") or Path(str(model["checkpoint"])).parent.name
        size = f"-{model['image_size']}px" if model["image_size"] else ""
        output_dir = args.output_dir / f"{index:02d}-{name}{size}"
        config = build_config(EvalConfig, overrides={**base, **overrides, "output_dir": str(output_dir)})
        measured.append(evaluate(config, progress=sys.stderr.isatty()))
        size_rules.append(str(model["size_rule"]))

    references = load_references(dataset="cifar10")
    print(format_table(measured, references), file=sys.stderr)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        note = (
            f"Measured on CIFAR-10 JPEG ({args.train_per_class} train / {args.test_per_class} test images per "
            "class); published rows come from their sources under their own protocols.\n\n"
        )
        args.markdown.write_text(note + format_markdown(measured, references) + "\n")
    report = {
        "benchmark": "eval_table",
        "dataset": "cifar10-jpeg",
        "train_per_class": args.train_per_class,
        "test_per_class": args.test_per_class,
        "skipped_baselines": skipped,
        "measured": [
            {
                **{key: value for key, value in result.to_dict().items() if key != "references"},
                "size_rule": rule,
            }
            for result, rule in zip(measured, size_rules, strict=True)
        ],
        "published": [asdict(row) for row in references],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
