"""Speed of the batched multi-crop augmentation vs a per-image PIL/torchvision pipeline.

Both produce DINO's crops (default 2 x 32 px global + 4 x 16 px local) for a batch of CIFAR-10
images, with the same recipe (crop, flip, colour jitter, grayscale, blur, solarize, normalise).
Prints one JSON object; images/s counts source images (each yields all crops).

The batched pipeline is measured with torch threads = all cores and with one thread (on a
machine shared with other jobs, OpenMP threads spin-wait for busy cores and all-cores can be far
slower). The per-image pipeline is measured as a DataLoader would run it: one process with one
torch thread (its per-core rate), and a pool of one worker process per core.

    .venv/bin/python benchmarks/augment_speed.py [--batch-size 64] [--device cpu|cuda] [--seconds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from lowdino.augment import MultiCropAugmentation, blur_kernel_size
from lowdino.data import make_synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_cifar(zip_path: Path, count: int) -> tuple[torch.Tensor, str]:
    """``count`` CIFAR-10 train images (spread over the classes) as uint8 (N, 3, 32, 32)."""
    if not zip_path.is_file():
        return make_synthetic(count, seed=0).images, "synthetic (CIFAR zip not found)"
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("cifar10/train/") and n.endswith(".jpg"))
        step = max(1, len(names) // count)
        arrays = [
            np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB")) for n in names[::step][:count]
        ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), f"cifar10 ({zip_path.name})"


def pil_view(size: int, scale: tuple[float, float], blur_p: float, solarize_p: float) -> T.Compose:
    blur = T.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))
    return T.Compose(
        [
            T.RandomResizedCrop(size, scale=scale, interpolation=T.InterpolationMode.BILINEAR),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([blur], p=blur_p),
            T.RandomSolarize(128, p=solarize_p),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


def pil_multicrop(
    global_size: int, local_size: int, n_local: int
) -> Callable[[list[Image.Image]], list[torch.Tensor]]:
    global1 = pil_view(global_size, (0.4, 1.0), 1.0, 0.0)
    global2 = pil_view(global_size, (0.4, 1.0), 0.1, 0.2)
    local = pil_view(local_size, (0.05, 0.4), 0.5, 0.0)

    def run(images: list[Image.Image]) -> list[torch.Tensor]:
        views: list[list[torch.Tensor]] = [[] for _ in range(2 + n_local)]
        for image in images:
            views[0].append(global1(image))
            views[1].append(global2(image))
            for i in range(n_local):
                views[2 + i].append(local(image))
        return [torch.stack(view) for view in views]  # collated, as a DataLoader would

    return run


_WORKER_RUN: Callable[[list[Image.Image]], list[torch.Tensor]] | None = None


def _worker_init(global_size: int, local_size: int, n_local: int) -> None:
    global _WORKER_RUN
    torch.set_num_threads(1)
    _WORKER_RUN = pil_multicrop(global_size, local_size, n_local)


def _worker_batch(images: list[Image.Image]) -> list[torch.Tensor]:
    assert _WORKER_RUN is not None
    return _WORKER_RUN(images)


def throughput(
    step: Callable[[], object], images_per_step: int, seconds: float, sync: Callable[[], None]
) -> float:
    for _ in range(3):
        step()
    sync()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        done += 1
    sync()
    return done * images_per_step / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--global-size", type=int, default=32)
    parser.add_argument("--local-size", type=int, default=16)
    parser.add_argument("--n-local", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per pipeline")
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="CIFAR-10 JPEG zip")
    args = parser.parse_args()

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    images, source = load_cifar(args.zip, args.batch_size)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    augment = MultiCropAugmentation(args.global_size, args.local_size, args.n_local, mean=MEAN, std=STD).to(
        device
    )
    on_device = images.to(device)
    batched = {}
    for count in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(count)
        batched[count] = throughput(lambda: augment(on_device), len(images), args.seconds, sync)
    torch.set_num_threads(threads)

    pil_images = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in images]
    pil_run = pil_multicrop(args.global_size, args.local_size, args.n_local)
    torch.set_num_threads(1)
    per_image = throughput(lambda: pil_run(pil_images), len(images), args.seconds, lambda: None)

    chunks = [pil_images[i::threads] for i in range(threads)]
    sizes = (args.global_size, args.local_size, args.n_local)
    with multiprocessing.get_context("spawn").Pool(threads, _worker_init, sizes) as pool:
        workers = throughput(lambda: pool.map(_worker_batch, chunks), len(images), args.seconds, lambda: None)

    crops = f"2x{args.global_size}+{args.n_local}x{args.local_size}"
    print(
        json.dumps(
            {
                "benchmark": "augment_speed",
                "images": source,
                "batch_size": len(images),
                "crops": crops,
                "device": str(device),
                "cores": threads,
                "batched_images_per_s_all_cores": round(batched[threads], 1),
                "batched_images_per_s_one_thread": round(batched[1], 1),
                "pil_one_process_images_per_s": round(per_image, 1),
                "pil_worker_pool_images_per_s": round(workers, 1),
                "pil_workers": threads,
                "speedup_all_cores_vs_worker_pool": round(batched[threads] / workers, 2),
                "speedup_one_thread_vs_one_process": round(batched[1] / per_image, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
