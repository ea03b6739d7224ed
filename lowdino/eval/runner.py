"""`evaluate(config)`: the whole `lowdino eval` run, from config to results.json.

Steps: load the backbone (checkpoint or registry) -> decode both dataset splits -> cap them
(stratified, seeded) -> extract or load cached features -> kNN on the full training pool -> for every
label fraction and seed, a linear probe on frozen features and/or fine-tuning of a copy of the
backbone on the same stratified subset -> results.json / results.csv / summary.json in output_dir.

The run directory follows the contract of `lowdino.contract.rundir`: config.yaml first, one
metrics.jsonl record per finished unit of work (``step`` / ``total_steps``), summary.json last, and
a STOP file cancels between units (`EvalCancelled`, exit status 75).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lowdino.augment import EvalTransform
from lowdino.backbones import check_input_size, get_spec
from lowdino.config import EvalConfig
from lowdino.config.loading import dump_config
from lowdino.contract.metrics import EVAL_SERIES_FIELD, eval_metric_key, latency_metric_key
from lowdino.contract.metrics_log import MetricsWriter
from lowdino.contract.rundir import RunDir, atomic_write_text
from lowdino.data.loading import load_dataset
from lowdino.data.types import LabeledImages
from lowdino.devices import resolve_device, resolve_device_ids, resolve_precision
from lowdino.errors import DataError
from lowdino.eval.cache import FeatureCache, FeatureKey, indices_hash
from lowdino.eval.features import extract_features
from lowdino.eval.finetune import finetune_top1
from lowdino.eval.knn import nearest_neighbour_top1, weighted_knn_top1
from lowdino.eval.latency import LatencyRow, thread_counts
from lowdino.eval.linear import linear_probe_top1
from lowdino.eval.model import load_eval_model
from lowdino.eval.references import load_references
from lowdino.eval.results import EvalResults, ProtocolResult, write_results
from lowdino.eval.subsets import stratified_cap, stratified_subset
from lowdino.resources import Overrides, apply_threads, plan_resources, this_machine


class EvalCancelled(Exception):  # noqa: N818 (a requested stop is not an error)
    """A STOP file appeared in the run directory; partial results were written."""


def default_output_dir(config: EvalConfig, now: datetime | None = None) -> Path:
    """runs/eval-<backbone or checkpoint's run folder>-<time>."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    if config.backbone is not None:
        model = config.backbone
    elif config.artifact is not None:
        model = Path(config.artifact).name.replace(".", "-")
    else:
        path = Path(str(config.checkpoint)).resolve()
        model = path.parent.name if path.suffix == ".pth" else path.name
    return Path("runs") / f"eval-{model}-{stamp}"


def resolve_image_size(requested: int | None, native: int, backbone: str, *, pretrained: bool = False) -> int:
    """The requested size; else, for pretrained weights, the resolution they were trained at (the
    backbone's declared `default_eval_size`: 224 for ImageNet CNNs and DINOv2 ViT-S/14, 256 for
    MobileViT); else the dataset's side rounded up to the backbone's multiple and minimum.

    A network pretrained at 224 px and shown 32 px CIFAR images sees objects 7x smaller than it
    learned on, which understates every pretrained baseline.
    """
    spec = get_spec(backbone)
    if requested is None and pretrained:
        requested = spec.default_eval_size
    if requested is None:
        multiple = spec.input_multiple
        size = max(native, spec.min_input_size)
        requested = math.ceil(size / multiple) * multiple
    check_input_size(backbone, requested)
    return requested


def check_labelled(data: LabeledImages, dataset: str, split: str) -> None:
    if len(data) == 0:
        raise DataError(
            f"the {split} split of {dataset} is empty; point --data-path at a dataset with images"
        )
    if int(data.labels.min()) < 0 or data.num_classes < 2:
        raise DataError(
            f"the {split} split of {dataset} has no class labels (evaluation needs >= 2 labelled classes); "
            "use a labelled dataset, e.g. an image folder with one sub-folder per class"
        )


def _dataset_id(dataset: str, data: LabeledImages) -> str:
    """Names a split's content for the feature cache: the same pixels and labels give the same id.

    Every pixel is hashed (CIFAR-10 train: 150 MB, ~0.2 s), so one edited image changes the id.
    """
    digest = hashlib.sha256(f"{tuple(data.images.shape)}|{data.classes}".encode())
    digest.update(data.labels.numpy().tobytes())
    digest.update(data.images.contiguous().numpy().data)
    return f"{dataset}:{digest.hexdigest()[:32]}"


@dataclass
class _Splits:
    """Both splits after capping; ``*_index`` are the cap's indices into the full split (None = all)."""

    train: LabeledImages
    test: LabeledImages
    train_index: Tensor | None
    test_index: Tensor | None
    train_id: str
    test_id: str


def _load_splits(config: EvalConfig) -> _Splits:
    """Decode both splits, check they are labelled alike, and apply the stratified caps."""
    loaded = {
        split: load_dataset(
            config.dataset, config.data_path, split, synthetic_size=config.synthetic_size, seed=config.seed
        )
        for split in ("train", "test")
    }
    for split, data in loaded.items():
        check_labelled(data, config.dataset, split)
    train, test = loaded["train"], loaded["test"]
    if train.classes != test.classes:
        raise DataError(
            f"train and test splits of {config.dataset} have different classes; give both the same class folders"
        )
    train_index = (
        stratified_cap(train.labels, config.max_train_samples, config.seed)
        if config.max_train_samples
        else None
    )
    test_index = (
        stratified_cap(test.labels, config.max_test_samples, config.seed) if config.max_test_samples else None
    )
    return _Splits(
        train=train if train_index is None else train.subset(train_index),
        test=test if test_index is None else test.subset(test_index),
        train_index=train_index,
        test_index=test_index,
        train_id=_dataset_id(config.dataset, train),
        test_id=_dataset_id(config.dataset, test),
    )


def _plan(config: EvalConfig) -> list[tuple[str, float, int]]:
    """Units of work (protocol, label fraction, seed) in the order they run."""
    units: list[tuple[str, float, int]] = []
    if "knn" in config.protocols:
        if config.knn_protocol in ("dino", "both"):
            units.append(("knn", 1.0, config.seed))
        if config.knn_protocol in ("seed", "both"):
            units.append(("knn_seed", 1.0, config.seed))
    for protocol in ("linear", "finetune"):
        if protocol in config.protocols:
            units += [
                (protocol, fraction, seed) for fraction in config.label_fractions for seed in config.seeds
            ]
    return units


def latency_runtimes(config: EvalConfig, model_runtime: str) -> list[str]:
    """An artifact is timed in its own runtime; a PyTorch model in each of --latency-runtimes."""
    if "latency" not in config.protocols:
        return []
    return [model_runtime] if config.artifact is not None else list(config.latency_runtimes)


def latency_row_count(config: EvalConfig, model_runtime: str) -> int:
    runtimes = latency_runtimes(config, model_runtime)
    return len(runtimes) * len(thread_counts(config.latency_threads)) * len(config.latency_batch_sizes)


class _Run:
    """One evaluation: the model, the data, the transform and the run directory it writes."""

    def __init__(self, config: EvalConfig, *, progress: bool) -> None:
        self.config = config
        self.progress = progress
        self.started = time.perf_counter()
        self.device = resolve_device(config.device)
        resolve_precision(config.precision, self.device)  # e.g. fp16 on a CPU: refused before any work
        self.device_ids = resolve_device_ids(config.device_ids, self.device)
        # Evaluation holds its datasets in memory: the plan's threads, no loader workers.
        self.resources = plan_resources(this_machine(self.device.type), Overrides.of(config), streamed=False)
        apply_threads(self.resources)
        if config.backbone is not None and config.image_size is not None:
            check_input_size(config.backbone, config.image_size)  # before paying for weights and data
        self.model = load_eval_model(config)
        if self.model.note:
            self.log(f"{self.model.name}: {self.model.note}")
        if config.channels_last:
            # Convolutions follow their weights' layout, so feature extraction and fine-tuning (a copy
            # of this backbone) both run channels-last without touching their inputs.
            self.model.backbone.to(memory_format=torch.channels_last)
        # Latency alone needs no dataset: it times a fixed batch.
        self.data = _load_splits(config) if _plan(config) else None
        if self.model.image_size is not None:
            self.image_size = self.model.image_size  # an artifact's input size is fixed at export
        elif self.data is None:
            self.image_size = config.image_size or get_spec(self.model.backbone_name).default_eval_size
            check_input_size(self.model.backbone_name, self.image_size)
        else:
            self.image_size = resolve_image_size(
                config.image_size,
                max(self.data.train.image_size),
                self.model.backbone_name,
                pretrained=self.model.source == "pretrained",
            )
        spec = get_spec(self.model.backbone_name)
        self.transform = EvalTransform(self.image_size, spec.mean, spec.std).to(self.device)
        self.model.backbone.to(self.device)
        self.output_dir = Path(config.output_dir) if config.output_dir else default_output_dir(config)
        self.run_dir = RunDir(self.output_dir)
        self.features: dict[str, Tensor] = {}
        self.latency: list[LatencyRow] = []

    @property
    def splits(self) -> _Splits:
        assert self.data is not None, "top-1 protocols load the dataset"
        return self.data

    def log(self, message: str) -> None:
        tqdm.write(f"[lowdino eval] {message}", file=sys.stderr)

    def check_stop(self) -> None:
        if self.run_dir.stop_requested():
            raise EvalCancelled(f"stop requested through {self.run_dir.stop_request}")

    def extract(self) -> None:
        """Features of both (capped) splits, from the cache or extracted and cached."""
        cache = FeatureCache(self.config.cache_dir)
        data = self.splits
        for split, pool, index, dataset_id in (
            ("train", data.train, data.train_index, data.train_id),
            ("test", data.test, data.test_index, data.test_id),
        ):
            self.check_stop()
            key = FeatureKey(
                model=self.model.backbone_name,
                weights_hash=self.model.weights_hash,
                dataset=dataset_id,
                split=split,
                image_size=self.image_size,
                subset=indices_hash(index),
                # Autocast (bf16 on CUDA) changes the low bits of the features.
                extra=f"device={self.device.type};precision={self.config.precision};channels_last={self.config.channels_last}"
                + (f";runtime={self.model.runtime}" if self.model.runtime != "torch" else ""),
            )

            def compute(pool: LabeledImages = pool) -> tuple[Tensor, Tensor]:
                # Several GPUs (--device-ids) share the extraction through DataParallel, as in training.
                backbone = self.model.backbone
                extractor = (
                    nn.DataParallel(backbone, device_ids=self.device_ids) if self.device_ids else backbone
                )
                features = extract_features(
                    extractor,
                    pool.images,
                    self.transform,
                    batch_size=self.config.batch_size,
                    device=self.device,
                    precision=self.config.precision,
                    progress=self.progress,
                )
                return features, pool.labels

            features, labels, hit = cache.get_or_compute(key, compute)
            if not torch.equal(labels, pool.labels):
                raise DataError(
                    f"cached features {cache.path(key)} belong to other labels; delete the file and rerun"
                )
            self.log(f"{split} features {tuple(features.shape)} ({'cache hit' if hit else 'extracted'})")
            self.features[split] = features

    def measure(self, protocol: str, fraction: float, seed: int) -> float:
        """Top-1 (percent) of one unit of work."""
        config, train, test = self.config, self.splits.train, self.splits.test
        if protocol == "knn":
            return weighted_knn_top1(
                self.features["train"].to(self.device),
                train.labels,
                self.features["test"],
                test.labels,
                k=config.k,
                temperature=config.knn_temperature,
                num_classes=train.num_classes,
            )
        if protocol == "knn_seed":
            return nearest_neighbour_top1(
                self.features["train"].to(self.device), train.labels, self.features["test"], test.labels
            )
        subset = stratified_subset(train.labels, fraction, seed, class_names=train.classes)
        if protocol == "linear":
            return linear_probe_top1(
                self.features["train"][subset],
                train.labels[subset],
                self.features["test"],
                test.labels,
                num_classes=train.num_classes,
                epochs=config.linear_epochs,
                lr=config.linear_lr,
                batch_size=config.batch_size,
                seed=seed,
                device=self.device,
                progress=self.progress,
            )
        return finetune_top1(
            self.model.backbone,
            train.images[subset],
            train.labels[subset],
            test.images,
            test.labels,
            transform=self.transform,
            num_classes=train.num_classes,
            epochs=config.finetune_epochs,
            lr=config.finetune_lr,
            batch_size=config.batch_size,
            seed=seed,
            device=self.device,
            precision=config.precision,
            progress=self.progress,
        )

    def measure_latency(self, on_row: Callable[[LatencyRow], None]) -> None:
        """The latency protocol (`lowdino.eval.latency`): every runtime, thread count and batch size, on the CPU."""
        from lowdino.eval.latency import artifact_runner, measure_latency, torch_runner

        config, model = self.config, self.model
        common: dict[str, Any] = {
            "image_size": self.image_size,
            "batch_sizes": config.latency_batch_sizes,
            "threads": config.latency_threads,
            "warmup": config.latency_warmup,
            "repetitions": config.latency_repetitions,
            "precision": model.precision,
            "note": model.note,
            "seed": config.seed,
            "on_row": on_row,
        }
        for runtime in latency_runtimes(config, model.runtime):
            self.check_stop()
            if config.artifact is not None:
                rows = measure_latency(
                    artifact_runner(config.artifact), runtime=runtime, artifact=config.artifact, **common
                )
            elif runtime == "torch":
                # On the CPU, where these backbones are deployed; a copy when evaluation runs on a GPU.
                backbone = (
                    model.backbone if self.device.type == "cpu" else copy.deepcopy(model.backbone).cpu()
                )
                rows = measure_latency(torch_runner(backbone), runtime=runtime, **common)
            else:
                rows = self._exported_latency(runtime, common)
            self.latency += rows

    def _exported_latency(self, runtime: str, common: dict[str, Any]) -> list[LatencyRow]:
        """Time an fp32 export of the model made for the measurement (ONNX for onnxruntime, a .pte for
        executorch), parity-checked like any export."""
        from lowdino.eval.latency import artifact_runner, measure_latency
        from lowdino.export.availability import require_format
        from lowdino.export.parity import compare, reference_features, require_parity
        from lowdino.export.runtime import load_runtime

        fmt = "executorch" if runtime == "executorch" else "onnx"
        require_format(fmt)
        backbone = copy.deepcopy(self.model.backbone).cpu().eval()
        size = self.image_size
        example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(self.config.seed))
        with tempfile.TemporaryDirectory(prefix="lowdino-latency-") as scratch:
            if fmt == "executorch":
                from lowdino.export.pte import export_pte

                path = Path(scratch) / "model.pte"
                export_pte(backbone, example[:1], path)  # batch 1; a larger batch is fed in turn
            else:
                from lowdino.export.onnx import export_onnx

                path = Path(scratch) / "model.onnx"
                export_onnx(backbone, example, path, opset=18, dynamic=True)
            parity = compare(
                reference_features(backbone, example), load_runtime(path)(example.numpy()), "random"
            )
            require_parity(parity, 1e-4, f"the {fmt} export of {self.model.backbone_name} timed for latency")
            return measure_latency(artifact_runner(path), runtime=runtime, **common)

    def finish(self, cells: Sequence[ProtocolResult], status: str) -> EvalResults:
        """results.json, results.csv and summary.json (status completed or cancelled)."""
        model, data = self.model, self.data
        results = EvalResults(
            model=model.name,
            backbone=model.backbone_name,
            source=model.source,
            params=model.params,
            feature_dim=model.feature_dim,
            dataset=self.config.dataset_identity if data is not None else "none (latency only)",
            image_size=self.image_size,
            train_size=len(data.train) if data is not None else 0,
            test_size=len(data.test) if data is not None else 0,
            num_classes=data.train.num_classes if data is not None else 0,
            labels_used=model.labels_used,
            results=list(cells),
            references=load_references(dataset=self.config.dataset_identity) if data is not None else [],
            output_dir=str(self.output_dir),
            wall_time_s=time.perf_counter() - self.started,
            runtime=model.runtime,
            precision=model.precision,
            artifact=self.config.artifact,
            note=model.note,
            latency=[row.as_dict() for row in self.latency],
        )
        write_results(results, self.output_dir)
        summary = {
            "status": status,
            "kind": "eval",
            "model": model.name,
            "backbone": model.backbone_name,
            "params": model.params,
            "dataset": self.config.dataset_identity,
            "image_size": self.image_size,
            "labels_used": model.labels_used,
            "runtime": model.runtime,
            "precision": model.precision,
            "artifact": self.config.artifact,
            "latency_rows": len(self.latency),
            "results": {
                cell.column: {"mean": cell.mean, "std": cell.std, "values": cell.values} for cell in cells
            },
            "wall_time_s": results.wall_time_s,
            "output_dir": str(self.output_dir),
        }
        atomic_write_text(self.run_dir.summary, json.dumps(summary, indent=2) + "\n")
        return results


def evaluate(config: EvalConfig, *, progress: bool = True) -> EvalResults:
    """Run every protocol of ``config``; write results into its output directory and return them."""
    run = _Run(config, progress=progress)
    run.output_dir.mkdir(parents=True, exist_ok=True)
    resolved = config.model_copy(update={"output_dir": str(run.output_dir)})
    atomic_write_text(run.run_dir.config, dump_config(resolved))
    data = (
        f"{config.dataset} {len(run.data.train)} train / {len(run.data.test)} test images"
        if run.data is not None
        else "no dataset (latency only)"
    )
    run.log(
        f"{run.model.name}: {run.model.params / 1e6:.2f} M params, {run.model.feature_dim}-d features; "
        f"{data} at {run.image_size} px on {run.device}"
    )
    run.log(run.resources.describe())
    units = _plan(config)
    total = len(units) + latency_row_count(config, run.model.runtime)
    cells: dict[tuple[str, float], ProtocolResult] = {}
    # An evaluation has no resume: a rerun into the same folder starts its records afresh, so that
    # every step appears once (the run-directory contract).
    run.run_dir.metrics.unlink(missing_ok=True)
    writer = MetricsWriter(run.run_dir.metrics)
    try:
        if any(protocol != "finetune" for protocol, _, _ in units):
            run.extract()
        bar = tqdm(units, desc="eval", unit="task", disable=not progress or None)
        for step, (protocol, fraction, seed) in enumerate(bar, start=1):
            run.check_stop()
            started = time.perf_counter()
            value = run.measure(protocol, fraction, seed)
            cell = cells.setdefault(
                (protocol, fraction), ProtocolResult(protocol, fraction, values=[], seeds=[])
            )
            cell.values.append(value)
            cell.seeds.append(seed)
            record = {
                "step": step,
                "total_steps": total,
                "epoch": 0,
                "time": time.time(),
                "protocol": protocol,
                "label_fraction": fraction,
                "seed": seed,
                "top1": value,
                EVAL_SERIES_FIELD: eval_metric_key(protocol, fraction),
                "seconds": time.perf_counter() - started,
            }
            writer.write(record)
            run.log(f"{cell.column} seed {seed}: top-1 {value:.2f} %")
        if "latency" in config.protocols:

            def record_latency(row: LatencyRow) -> None:
                key = latency_metric_key(row.runtime, row.batch_size, row.threads, row.precision)
                timed.append(row)
                step = len(units) + len(timed)
                # key / value: the one series this record feeds (median ms per image; lower is better).
                writer.write(
                    {
                        "step": step,
                        "total_steps": total,
                        "epoch": 0,
                        "time": time.time(),
                        "key": key,
                        "value": row.median_ms,
                        EVAL_SERIES_FIELD: key,
                        **{name: value for name, value in row.as_dict().items() if value is not None},
                    }
                )
                run.log(
                    f"latency {row.runtime} {row.precision} batch {row.batch_size} x {row.threads} threads: "
                    f"{row.median_ms:.3f} ms/img (p90 {row.p90_ms:.3f}), {row.images_per_s:.1f} img/s"
                )

            timed: list[LatencyRow] = []
            run.measure_latency(record_latency)
    except EvalCancelled:
        run.finish(list(cells.values()), "cancelled")
        raise
    finally:
        writer.close()
    return run.finish(list(cells.values()), "completed")
