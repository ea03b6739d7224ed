"""The resource plan (lowdino/resources.py): threads, loader workers and where augmentation runs,
as a pure function of the machine and the user's overrides."""

from __future__ import annotations

import pytest

from lowdino.config import EvalConfig, PretrainConfig
from lowdino.resources import Machine, Overrides, plan_resources


@pytest.mark.parametrize(
    ("cores", "threads", "workers", "in_workers"),
    [
        (1, 1, 1, False),  # nothing to run beside the step: the training process augments
        (2, 2, 1, True),
        (8, 8, 2, True),
        (64, 64, 8, True),
    ],
)
def test_cpu_training_gives_the_model_every_core_and_the_workers_the_augmentation(
    cores: int, threads: int, workers: int, in_workers: bool
) -> None:
    plan = plan_resources(Machine(cores=cores))
    assert (plan.torch_threads, plan.loader_workers, plan.augment_in_workers) == (
        threads,
        workers,
        in_workers,
    )
    assert plan.interop_threads == 1
    assert f"{cores} core" in plan.reason
    assert "CPU device" in plan.reason


def test_the_two_core_plan_reads_as_the_issue_asks() -> None:
    assert plan_resources(Machine(cores=2)).describe() == (
        "threads: 2 torch, 1 loader worker, augmentation in workers: 2 cores, CPU device, no other rank"
    )


@pytest.mark.parametrize(
    ("cores", "gpus", "workers"),
    [(2, 1, 1), (8, 1, 7), (64, 1, 16), (2, 8, 1), (8, 8, 1), (64, 8, 7)],
)
def test_gpu_ranks_share_the_cores_as_loader_workers(cores: int, gpus: int, workers: int) -> None:
    # torchrun starts one process per GPU: each takes its share of the cores, one of them to drive its GPU.
    machine = Machine(cores=cores, local_world_size=gpus, device_type="cuda", gpus=gpus)
    plan = plan_resources(machine)
    assert plan.torch_threads == 1
    assert plan.loader_workers == workers
    assert not plan.augment_in_workers  # the GPU augments
    assert plan.loader_workers * gpus <= max(cores, gpus)  # no oversubscription over all ranks
    others = gpus - 1
    assert ("no other rank" if others == 0 else f"{others} other rank") in plan.reason
    assert f"{gpus} GPU" in plan.reason


@pytest.mark.parametrize(("cores", "ranks", "threads"), [(2, 2, 1), (8, 2, 4), (64, 8, 8), (2, 8, 1)])
def test_cpu_ranks_split_the_cores_without_oversubscribing(cores: int, ranks: int, threads: int) -> None:
    plan = plan_resources(Machine(cores=cores, local_world_size=ranks), streamed=False)
    assert plan.torch_threads == threads
    assert plan.torch_threads * ranks <= max(cores, ranks)
    assert plan.loader_workers == 0
    assert not plan.augment_in_workers
    assert "dataset in memory" in plan.reason


def test_overrides_win_and_are_named_in_the_reason() -> None:
    plan = plan_resources(Machine(cores=8), Overrides(threads=3, num_workers=5, augment_in_workers=False))
    assert (plan.torch_threads, plan.loader_workers, plan.augment_in_workers) == (3, 5, False)
    assert "--threads 3" in plan.reason
    assert "--num-workers 5" in plan.reason
    assert "--augment-in process" in plan.reason
    forced = plan_resources(Machine(cores=1), Overrides(augment_in_workers=True))
    assert forced.augment_in_workers
    # No worker to hand the views over from: the training process augments whatever was asked.
    assert not plan_resources(Machine(cores=8), Overrides(num_workers=0)).augment_in_workers
    gpu = plan_resources(Machine(cores=8, device_type="cuda", gpus=1), Overrides(augment_in_workers=True))
    assert not gpu.augment_in_workers
    assert "stays on the GPU" in gpu.reason


def test_overrides_come_from_the_config_and_omp_num_threads() -> None:
    config = PretrainConfig.model_validate({"threads": 2, "num_workers": 3, "augment_in": "process"})
    assert Overrides.of(config, environ={"OMP_NUM_THREADS": "1"}) == Overrides(
        threads=2, num_workers=3, augment_in_workers=False
    )
    unset = Overrides.of(PretrainConfig(), environ={"OMP_NUM_THREADS": "1"})
    assert unset.threads == 1
    assert unset.augment_in_workers is None
    assert "OMP_NUM_THREADS 1" in plan_resources(Machine(cores=4), unset).reason
    assert Overrides.of(EvalConfig(backbone="resnet5m"), environ={}).threads is None
