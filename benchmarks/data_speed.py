"""ImageNet-scale data path: finished DINO multi-crop batches per second, printed as JSON.

    uptime; .venv/bin/python benchmarks/data_speed.py [--workers 2] [--batch-size 32] [--batches 16] [--trials 2]

1. Builds once an ImageNet-like folder from the shared CIFAR-10 zip: 10 000 training images (1 000
   per class) and 500 test images, each resized to 500 x 375 (bicubic) and saved as JPEG quality 90,
   under data/imagenet-like/{train,test}/<class>/ (git-ignored), and its webdataset shards
   (`lowdino data shard`, 1 000 images per tar) under data/imagenet-like-shards/.
2. Stage costs (`stages_ms_per_image`): CPU milliseconds per image of each stage of LowDINO's path,
   one thread, in this process: decode (open, draw the crop boxes, decode at the scale they need),
   crop (cut and resize the 2 + 10 uint8 crops), augmentation (the photometric chain on a batch of
   crops, uint8 out, as a loader worker runs it), normalise (uint8 views -> normalised float, the
   training process's share); and the reference's whole per-image PIL pipeline for scale. The
   largest stage is where the next improvement pays.
3. Measures finished batches (2 x 224 + 10 x 96 px crops, decoded, cropped, augmented, normalised:
   ready for the model), with the same number of DataLoader workers, alternating the pipelines for
   ``--trials`` rounds so that the shared machine's drift hits all of them alike:
   - reference: facebookresearch/dino's pipeline, `ImageFolder` + per-image PIL
     `DataAugmentationDINO` (copied below from main_dino.py and utils.py, 10 local crops);
   - lowdino streaming, image folder, as `lowdino pretrain` streams on a CPU device with 2 or more
     cores (lowdino.resources): workers decode each JPEG once at the scale its crops need, cut the
     crops and augment them, handing over uint8 views; the main process normalises them (counted);
   - lowdino streaming, webdataset shards: the same, reading the tars;
   - lowdino streaming, image folder, with the augmentation in the main process instead (one torch
     thread; what a 1-core plan or `--augment-in process` does), for comparison.
   Each pipeline reports wall-clock images/s and images per CPU-second of all its processes (main
   and workers), which does not move with the shared machine's load as much.
4. Runs, in this process, the end-to-end training of
       lowdino pretrain --backbone mobilevit_xxs --dataset imagefolder --data-path FOLDER
         --data-loading stream --global-crop-size 224 --local-crop-size 96 -c 12 -b B -o 4096
         --max-steps S --device cpu --no-knn-monitor
   on the resource plan's defaults (threads, loader workers, augmentation in workers; printed), its
   steady state (after the trainer's warm-up steps) alternated with the model-alone rate (the
   trainer's step on one batch of crops made once, same threads), in wall-clock and CPU time.

Targets: speedup_vs_reference >= 2 (wall clock, every trial, and CPU time); shards within 10 % of the
folder; pretrain / model >= 0.9. Measure on a quiet machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageFilter, ImageOps
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from lowdino.augment import MultiCropAugmentation  # noqa: E402
from lowdino.cli.main import build_parser  # noqa: E402
from lowdino.cli.pretrain import config_from_args  # noqa: E402
from lowdino.data.cropdecode import cut_crops, decode_reduced, draw_boxes, open_image, reduction_for  # noqa: E402
from lowdino.data.folderstream import open_folder_source  # noqa: E402
from lowdino.data.loader import LoaderOptions, StreamingBatches  # noqa: E402
from lowdino.data.shards import open_shard_source  # noqa: E402
from lowdino.data.shardwriter import shard_folder  # noqa: E402
from lowdino.data.types import CropBatch  # noqa: E402
from lowdino.devices import resolve_precision  # noqa: E402
from lowdino.resources import Overrides, plan_resources, this_machine  # noqa: E402
from lowdino.train.distributed import DistContext  # noqa: E402
from lowdino.train.state import WARMUP_STEPS  # noqa: E402
from lowdino.train.throughput import model_images_per_sec  # noqa: E402
from lowdino.train.trainer import prepare, pretrain  # noqa: E402

DEFAULT_ZIP = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
FOLDER = REPO / "data" / "imagenet-like"
SHARDS = REPO / "data" / "imagenet-like-shards"
SIZE = (500, 375)
TRAIN_PER_CLASS, TEST_PER_CLASS = 1000, 50
GLOBAL, LOCAL, N_LOCAL = 224, 96, 10


# --- the ImageNet-like folder ------------------------------------------------------------------------


def _convert(job: tuple[bytes, str]) -> None:
    data, target = job
    image = Image.open(io.BytesIO(data)).convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
    image.save(target, quality=90)


def build_folder(archive: Path, folder: Path = FOLDER) -> Path:
    marker = folder / ".complete"
    if marker.exists():
        return folder
    if not archive.is_file():
        raise SystemExit(f"CIFAR-10 zip {archive} not found; pass --zip PATH to the shared cifar10-jpeg.zip")
    wanted = {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS}
    taken: dict[tuple[str, str], int] = {}
    jobs = []
    with zipfile.ZipFile(archive) as source:
        for name in sorted(source.namelist()):
            parts = name.split("/")
            if len(parts) != 4 or not parts[3].endswith(".jpg") or parts[1] not in wanted:
                continue
            _, split, label, filename = parts
            if taken.get((split, label), 0) >= wanted[split]:
                continue
            taken[split, label] = taken.get((split, label), 0) + 1
            target = folder / split / label / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((source.read(name), str(target)))
    with multiprocessing.Pool() as pool:
        pool.map(_convert, jobs, chunksize=64)
    marker.touch()
    return folder


def build_shards(folder: Path, shards: Path = SHARDS) -> Path:
    if not (shards / "train.json").exists():
        shard_folder(folder, shards, shard_size=1000)
    return shards


# --- the reference: facebookresearch/dino main_dino.py DataAugmentationDINO (+ utils.py) -------------


class GaussianBlur:
    """utils.GaussianBlur of facebookresearch/dino."""

    def __init__(self, p: float = 0.5, radius_min: float = 0.1, radius_max: float = 2.0) -> None:
        self.prob, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() > self.prob:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.radius_min, self.radius_max)))


class Solarization:
    """utils.Solarization of facebookresearch/dino."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.solarize(img) if random.random() < self.p else img


class DataAugmentationDINO:
    """main_dino.py's DataAugmentationDINO, verbatim apart from type hints."""

    def __init__(
        self,
        global_crops_scale: tuple[float, float],
        local_crops_scale: tuple[float, float],
        local_crops_number: int,
    ) -> None:
        flip_and_color_jitter = T.Compose(
            [
                T.RandomHorizontalFlip(p=0.5),
                T.RandomApply([T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)], p=0.8),
                T.RandomGrayscale(p=0.2),
            ]
        )
        normalize = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
        self.global_transfo1 = T.Compose(
            [
                T.RandomResizedCrop(224, scale=global_crops_scale, interpolation=Image.BICUBIC),  # type: ignore[arg-type]
                flip_and_color_jitter,
                GaussianBlur(1.0),
                normalize,
            ]
        )
        self.global_transfo2 = T.Compose(
            [
                T.RandomResizedCrop(224, scale=global_crops_scale, interpolation=Image.BICUBIC),  # type: ignore[arg-type]
                flip_and_color_jitter,
                GaussianBlur(0.1),
                Solarization(0.2),
                normalize,
            ]
        )
        self.local_crops_number = local_crops_number
        self.local_transfo = T.Compose(
            [
                T.RandomResizedCrop(96, scale=local_crops_scale, interpolation=Image.BICUBIC),  # type: ignore[arg-type]
                flip_and_color_jitter,
                GaussianBlur(p=0.5),
                normalize,
            ]
        )

    def __call__(self, image: Image.Image) -> list[torch.Tensor]:
        crops = [self.global_transfo1(image), self.global_transfo2(image)]
        for _ in range(self.local_crops_number):
            crops.append(self.local_transfo(image))
        return crops


def _single_thread_worker(_worker_id: int) -> None:
    torch.set_num_threads(1)  # as each DINO worker effectively runs: PIL work, one core per worker


def reference_batches(folder: Path, batch_size: int, workers: int) -> Iterator[Any]:
    transform = DataAugmentationDINO((0.4, 1.0), (0.05, 0.4), N_LOCAL)
    dataset = datasets.ImageFolder(str(folder / "train"), transform=transform)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        worker_init_fn=_single_thread_worker,
        prefetch_factor=2,
    )
    for images, _labels in loader:
        yield images


# --- lowdino ------------------------------------------------------------------------------------------


def lowdino_batches(source: Any, batch_size: int, workers: int, *, in_workers: bool = True) -> Iterator[Any]:
    """As `lowdino pretrain` streams on a CPU device: workers decode, cut and augment (uint8 views),
    the training process normalises; ``in_workers=False``: the training process augments instead."""
    augment = MultiCropAugmentation(GLOBAL, LOCAL, N_LOCAL)
    options = LoaderOptions(num_workers=workers, prefetch_factor=2, persistent_workers=False)
    loader = StreamingBatches(
        source,
        augment.specs(),
        batch_size,
        seed=0,
        options=options,
        augment_in_workers=augment if in_workers else None,
    )
    for batch, _labels in loader.epoch(0):
        yield augment(batch)  # counted: the batch is ready for the model only after this


# --- stage costs ----------------------------------------------------------------------------------------


def stage_costs(folder: Path, images: int, batch_size: int) -> dict[str, float]:
    """CPU ms per image of each stage, one thread, in this process (see the module doc, 2.)."""
    files = sorted((folder / "train").rglob("*.jpg"))[:: max(1, 10_000 // images)][:images]
    augment = MultiCropAugmentation(GLOBAL, LOCAL, N_LOCAL)
    specs = augment.specs()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.process_time()
        decoded = []
        for path in files:
            with open_image(path) as image:
                original = image.size
                boxes = draw_boxes(specs, *original)
                decoded.append((decode_reduced(image, reduction_for(specs, boxes)), original, boxes))
        decode = time.process_time() - started

        started = time.process_time()
        crops = [cut_crops(image, original, specs, boxes) for image, original, boxes in decoded]
        crop = time.process_time() - started

        batches = [
            CropBatch([torch.stack([c[g] for c in crops[i : i + batch_size]]) for g in range(len(specs))])
            for i in range(0, len(crops) - batch_size + 1, batch_size)
        ]
        counted = len(batches) * batch_size
        started = time.process_time()
        views = [augment.augment_crops(batch, quantize=True) for batch in batches]
        augmentation = time.process_time() - started

        started = time.process_time()
        for batch_views in views:
            augment.normalize_views(batch_views)
        normalise = time.process_time() - started

        reference = DataAugmentationDINO((0.4, 1.0), (0.05, 0.4), N_LOCAL)
        started = time.process_time()
        for path in files:
            with Image.open(path) as image:
                reference(image.convert("RGB"))
        reference_total = time.process_time() - started
    finally:
        torch.set_num_threads(previous)
    per_image = {
        "decode": decode / len(files),
        "crop": crop / len(files),
        "augmentation": augmentation / counted,
        "normalise": normalise / counted,
    }
    out = {name: round(1000 * value, 2) for name, value in per_image.items()}
    out["lowdino_total"] = round(1000 * sum(per_image.values()), 2)
    out["reference_total"] = round(1000 * reference_total / len(files), 2)
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its live children (the loader workers)."""
    total = 0.0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(me) or int(fields[1]) == me:  # fields[1]: parent pid
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def timed(
    make: Callable[[], Iterator[Any]], batches: int, batch_size: int, warmup: int = 2
) -> tuple[float, float]:
    """(images per second, images per CPU-second of all its processes) over ``batches`` finished
    batches after ``warmup`` (worker start-up excluded).

    The second figure does not depend on what else runs on the machine: on a shared machine the
    wall-clock rate moves with the other jobs' load (and a pipeline with more busy processes gets a
    larger share of it), while the CPU time a finished image costs stays put. With its cores to
    itself, a pipeline that keeps them busy delivers cores x that figure per second.
    """
    iterator = make()
    for _ in range(warmup):
        next(iterator)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for _ in range(batches):
        views = next(iterator)
        assert len(views) == 2 + N_LOCAL
        assert tuple(views[0].shape) == (batch_size, 3, GLOBAL, GLOBAL)
        assert tuple(views[-1].shape) == (batch_size, 3, LOCAL, LOCAL)
    images = batches * batch_size
    rate, per_cpu_second = images / (time.perf_counter() - started), images / (cpu_seconds() - cpu_started)
    del iterator  # ends the workers before the next pipeline starts
    return rate, per_cpu_second


# --- end to end ---------------------------------------------------------------------------------------


class StepClock:
    """A trainer callback noting wall and CPU time (training process and its loader workers) per step."""

    def __init__(self) -> None:
        self.marks: list[tuple[int, float, float]] = []

    def on_metrics(self, record: dict[str, Any]) -> None:
        self.marks.append((int(record["step"]), time.perf_counter(), cpu_seconds()))

    def should_stop(self) -> bool:
        return False


def end_to_end(folder: Path, batch_size: int, steps: int, trials: int) -> dict[str, Any]:
    """`lowdino pretrain` on the folder against the model alone, alternated ``trials`` times."""
    work = Path(tempfile.mkdtemp(prefix="lowdino-data-speed-"))
    argv = [
        "pretrain", "--backbone", "mobilevit_xxs", "--dataset", "imagefolder", "--data-path", str(folder),
        "--data-loading", "stream", "--global-crop-size", str(GLOBAL), "--local-crop-size", str(LOCAL),
        "-c", str(2 + N_LOCAL), "-b", str(batch_size), "-o", "4096",
        "--max-steps", str(steps), "--device", "cpu", "--no-knn-monitor",
    ]  # fmt: skip
    config = config_from_args(build_parser().parse_args(argv))
    plan = plan_resources(this_machine("cpu"), Overrides.of(config), streamed=True)
    device = torch.device("cpu")
    trials_out = []
    for trial in range(trials):
        clock = StepClock()
        summary = pretrain(
            config.model_copy(update={"output_dir": str(work / f"run{trial}")}), callbacks=[clock]
        )
        assert summary["status"] == "completed"
        # Steady state: from the end of step WARMUP_STEPS on, as summary.json's images/s.
        (first, t0, c0), (last, t1, c1) = clock.marks[WARMUP_STEPS - 1], clock.marks[-1]
        images = (last - first) * batch_size
        pipeline_rate, pipeline_cpu = images / (t1 - t0), images / (c1 - c0)

        model_config = config.model_copy(
            update={"output_dir": str(work / f"model{trial}"), "persistent_workers": False}
        )
        prepared = prepare(model_config, DistContext(), device, resolve_precision(config.precision, device))
        assert prepared.stream is not None
        batches = prepared.stream.epoch(0)
        batch, _labels = next(batches)
        batches.close()  # the loader workers exit: the model alone runs in this process
        model_images_per_sec(prepared, steps=2, warmup=1, images=batch)
        cpu_started = cpu_seconds()
        model_steps = max(4, steps - WARMUP_STEPS)
        model_rate = model_images_per_sec(prepared, steps=model_steps, warmup=0, images=batch)
        model_cpu = model_steps * batch_size / (cpu_seconds() - cpu_started)
        trials_out.append(
            {
                "pipeline_images_per_sec": round(pipeline_rate, 2),
                "model_images_per_sec": round(model_rate, 2),
                "ratio": round(pipeline_rate / model_rate, 3),
                "pipeline_images_per_cpu_second": round(pipeline_cpu, 2),
                "model_images_per_cpu_second": round(model_cpu, 2),
                "ratio_cpu_time": round(pipeline_cpu / model_cpu, 3),
            }
        )
    return {
        "command": "lowdino " + " ".join(argv) + " --output-dir DIR",
        "resource_plan": plan.describe(),
        "trials": trials_out,
        "ratio_median": sorted(t["ratio"] for t in trials_out)[len(trials_out) // 2],
        "ratio_cpu_time_median": sorted(t["ratio_cpu_time"] for t in trials_out)[len(trials_out) // 2],
        "target_ratio": 0.9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers, the same for every pipeline"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=16, help="timed batches per pipeline and trial")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    parser.add_argument("--stage-images", type=int, default=64, help="images the stage costs are timed on")
    parser.add_argument("--e2e-batch-size", type=int, default=16)
    parser.add_argument("--e2e-steps", type=int, default=14)
    parser.add_argument("--e2e-trials", type=int, default=2)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)

    load_before = os.getloadavg()[0]
    folder = build_folder(args.zip)
    shards = build_shards(folder)
    stages = stage_costs(folder, args.stage_images, args.batch_size)
    pipelines: dict[str, Callable[[], Iterator[Any]]] = {
        "reference": lambda: reference_batches(folder, args.batch_size, args.workers),
        "lowdino_folder": lambda: lowdino_batches(
            open_folder_source(str(folder), "train"), args.batch_size, args.workers
        ),
        "lowdino_shards": lambda: lowdino_batches(
            open_shard_source(shards, "train"), args.batch_size, args.workers
        ),
        "lowdino_folder_process_augment": lambda: lowdino_batches(
            open_folder_source(str(folder), "train"), args.batch_size, args.workers, in_workers=False
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    cpu_rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(args.trials):
        for name, make in pipelines.items():
            rate, per_cpu_second = timed(make, args.batches, args.batch_size)
            rates[name].append(rate)
            cpu_rates[name].append(per_cpu_second)
    median = {name: sorted(values)[len(values) // 2] for name, values in rates.items()}
    cpu_median = {name: sorted(values)[len(values) // 2] for name, values in cpu_rates.items()}
    result: dict[str, Any] = {
        "benchmark": "data_speed",
        "folder": f"{TRAIN_PER_CLASS * 10} CIFAR-10 train images at {SIZE[0]}x{SIZE[1]}, JPEG q90",
        "crops": f"2x{GLOBAL}+{N_LOCAL}x{LOCAL}",
        "batch_size": args.batch_size,
        "loader_workers": args.workers,
        "main_torch_threads": args.threads,
        "cpu_cores": multiprocessing.cpu_count(),
        "images_per_sec_trials": {name: [round(v, 2) for v in values] for name, values in rates.items()},
        "reference_images_per_sec": round(median["reference"], 2),
        "lowdino_folder_images_per_sec": round(median["lowdino_folder"], 2),
        "lowdino_shards_images_per_sec": round(median["lowdino_shards"], 2),
        "lowdino_folder_process_augment_images_per_sec": round(median["lowdino_folder_process_augment"], 2),
        "speedup_vs_reference": round(median["lowdino_folder"] / median["reference"], 2),
        "speedup_per_trial": [
            round(ours / ref, 2)
            for ours, ref in zip(rates["lowdino_folder"], rates["reference"], strict=True)
        ],
        "shards_vs_folder": round(median["lowdino_shards"] / median["lowdino_folder"], 3),
        "images_per_cpu_second_trials": {
            name: [round(v, 2) for v in values] for name, values in cpu_rates.items()
        },
        "images_per_cpu_second": {name: round(value, 2) for name, value in cpu_median.items()},
        "speedup_vs_reference_cpu_time": round(cpu_median["lowdino_folder"] / cpu_median["reference"], 2),
        "shards_vs_folder_cpu_time": round(cpu_median["lowdino_shards"] / cpu_median["lowdino_folder"], 3),
        "stages_ms_per_image": stages,
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "batches_per_sec_lowdino_folder": round(median["lowdino_folder"] / args.batch_size, 3),
    }
    if not args.skip_e2e:
        result["end_to_end"] = end_to_end(folder, args.e2e_batch_size, args.e2e_steps, args.e2e_trials)
        result["load_average_1min_after_e2e"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
