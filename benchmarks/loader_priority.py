"""Would niced loader workers feed CPU training better? End to end, at both priorities, alternated.

    uptime; .venv/bin/python benchmarks/loader_priority.py --pairs 3

data_speed.py's 224 px end-to-end trial (mobilevit_xxs, 2 x 224 + 10 x 96 px crops, a streamed
ImageNet-like folder, the trainer's own resource plan), run alternately with the loader workers at the
training process's priority and at nice +NICENESS (a DataLoader `worker_init_fn` added here: the library
does not nice its workers, see the README), in one process, so that each pair sees the same machine. Prints one JSON
line per trial (the niceness, the load average, data_speed's trial fields) and a summary with the
medians of `ratio` (end to end against the model alone) for each priority.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_speed  # benchmarks/data_speed.py: the folder and the end-to-end trial

import lowdino.data.loader as loader

NICENESS = 10
_DataLoader = loader.DataLoader


class _Priority:
    niceness = 0


def _lower_priority(_worker_id: int) -> None:
    os.nice(_Priority.niceness)


def _data_loader(*args: Any, **kwargs: Any) -> Any:
    if kwargs.get("num_workers") and _Priority.niceness:
        kwargs["worker_init_fn"] = _lower_priority
    return _DataLoader(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=3, help="alternated trials per priority")
    parser.add_argument("--steps", type=int, default=14, help="training steps per end-to-end trial")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--zip", type=Path, default=data_speed.DEFAULT_ZIP)
    args = parser.parse_args()

    loader.DataLoader = _data_loader  # type: ignore[misc]  # the one place StreamingBatches builds its loader
    niced = NICENESS
    folder = data_speed.build_folder(args.zip)
    load_before = round(os.getloadavg()[0], 2)
    ratios: dict[int, list[float]] = {0: [], niced: []}
    for _ in range(args.pairs):
        for niceness in (0, niced):
            _Priority.niceness = niceness
            trial = data_speed.end_to_end(folder, args.batch_size, args.steps, 1)["trials"][0]
            ratios[niceness].append(trial["ratio"])
            print(
                json.dumps({"niceness": niceness, "load": round(os.getloadavg()[0], 2), **trial}), flush=True
            )
    summary = {
        "benchmark": "loader_priority",
        "load_average_1min_before": load_before,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "ratios": {str(niceness): values for niceness, values in ratios.items()},
        "ratio_median": {str(niceness): sorted(v)[len(v) // 2] for niceness, v in ratios.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
