"""SystemMonitor: a sample is handed over once, with the data wait share of the steps since the last one."""

from __future__ import annotations

import torch

from lowdino.contract import metrics as names
from lowdino.train.system_monitor import SystemMonitor


def test_a_sample_is_taken_once_with_the_wait_share_since_the_previous() -> None:
    monitor = SystemMonitor(3600, torch.device("cpu"))  # the thread never fires: samples on demand only
    try:
        assert monitor.take() == {}
        monitor.note_step(1.0, 4.0)
        monitor.note_step(0.0, 4.0)
        monitor.sample_now()
        sample = monitor.take()
        assert sample[names.DATA_WAIT_PERCENT] == 12.5
        assert sample[names.RSS_MB] > 10
        assert sample[names.CPU_PERCENT] >= 0
        assert not any(key in sample for key in (names.GPU_MEMORY_MB, names.GPU_UTIL_PERCENT))
        assert monitor.take() == {}  # handed over once
        monitor.note_step(3.0, 4.0)
        monitor.sample_now()
        assert monitor.take()[names.DATA_WAIT_PERCENT] == 75.0  # only the steps since the last sample
    finally:
        monitor.close()


def test_the_thread_samples_by_itself() -> None:
    monitor = SystemMonitor(0.01, torch.device("cpu")).start()
    try:
        for _ in range(500):
            sample = monitor.take()
            if sample:
                break
            monitor._stop.wait(0.01)
        assert names.CPU_PERCENT in sample
        assert names.DATA_WAIT_PERCENT not in sample  # no step reported: no share to give
    finally:
        monitor.close()
