"""The study preset "Reproduce the original table" end to end on the embedded default, timed; JSON out.

    .venv/bin/python benchmarks/study_smoke.py --scale smoke

Starts `lowdino serve` (SQLite, file broker, one worker: what `make run` starts) on a fresh
LOWDINO_HOME, submits the study over REST on the full CIFAR-10 JPEG folder (50 000 train / 10 000
test images from ../shared/datasets/cifar10-jpeg.zip, declared as cifar10 so the report sets it beside
the published CIFAR-10 rows), waits until every run and chained evaluation has finished, and saves the
report it produced (Markdown and JSON) next to the printed figures. Wall time includes decoding the
images once (the decoded-tensor cache starts empty) and every process start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cifar_data import DEFAULT_ZIP, extract_cifar10
from servicelib import free_port


def wait_for_api(base: str, process: subprocess.Popen[bytes], deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit(f"lowdino serve exited with {process.returncode}")
        try:
            health = httpx.get(f"{base}/api/health", timeout=2).json()
            if health.get("workers"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("lowdino serve did not report a live worker in time")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="smoke", help="A scale of the study (smoke, cpu_hour, gpu).")
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="The CIFAR-10 JPEG zip.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="Where the report goes.")
    parser.add_argument("--timeout-minutes", type=float, default=60.0, help="Give up after this long.")
    args = parser.parse_args()

    data = extract_cifar10(args.zip)
    home = Path(tempfile.mkdtemp(prefix="lowdino-study-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LOWDINO_HOME": str(home), "LOWDINO_DATA_ROOTS": str(data.parent)}
    env.pop("LOWDINO_DATABASE_URL", None)
    env.pop("LOWDINO_BROKER_URL", None)
    log = (home / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "lowdino", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_api(base, serve)
        started = time.monotonic()
        body = {
            "study": "reproduce_original_table",
            "scale": args.scale,
            "pretrain": {"dataset": "imagefolder", "dataset_name": "cifar10", "data_path": str(data)},
        }
        response = httpx.post(f"{base}/api/studies", json=body, timeout=60)
        response.raise_for_status()
        sweep = response.json()
        deadline = started + args.timeout_minutes * 60
        while not sweep["done"]:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the study did not finish in {args.timeout_minutes} min: {sweep['status_counts']}"
                )
            time.sleep(5)
            sweep = httpx.get(f"{base}/api/sweeps/{sweep['id']}", timeout=30).json()
            print(
                f"{time.monotonic() - started:7.0f} s  {sweep['status_counts']}", file=sys.stderr, flush=True
            )
        wall_s = time.monotonic() - started
        report = httpx.get(f"{base}/api/report", params={"sweep": sweep["id"]}, timeout=60).json()
        markdown = httpx.get(
            f"{base}/api/report", params={"sweep": sweep["id"], "format": "md"}, timeout=60
        ).text
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"study_{args.scale}_report.md").write_text(markdown)
        (args.out / f"study_{args.scale}_report.json").write_text(json.dumps(report, indent=1))
        runs = httpx.get(f"{base}/api/runs", params={"sweep": sweep["id"], "limit": 100}, timeout=30).json()[
            "data"
        ]
        measured = {
            row["model"]: {key: (cell or {}).get("mean") for key, cell in row["cells"].items()}
            for row in report["rows"]
            if row["kind"] == "measured"
        }
        print(
            json.dumps(
                {
                    "benchmark": "study_smoke",
                    "scale": args.scale,
                    "wall_minutes": round(wall_s / 60, 2),
                    "status_counts": sweep["status_counts"],
                    "runs": {run["name"]: run["status"] for run in runs},
                    "skipped": sweep["skipped"],
                    "measured_top1": measured,
                    "report_markdown": str(args.out / f"study_{args.scale}_report.md"),
                    "cpu_count": os.cpu_count(),
                    "load_average": os.getloadavg(),
                },
                indent=1,
            )
        )
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()


if __name__ == "__main__":
    main()
