"""A stand-in for `python -m lowdino pretrain` that follows the run-directory contract exactly.

Used only by the supervisor unit tests, so that they exercise tailing, cancel and exit-code mapping
in seconds without torch. Behaviour comes from FAKE_* environment variables:

    FAKE_STEPS        total steps (default 20)
    FAKE_STEP_SLEEP   seconds per step (default 0.01)
    FAKE_EXIT         exit status after the last step (default 0; non-zero prints a traceback first)
    FAKE_SPLIT_LINES  "1": write every metrics record in two halves with a pause in between
    FAKE_CKPT_EVERY   write checkpoint.pth every this many steps (default 5)
    FAKE_IGNORE_STOP  "1": never look at STOP (to test the worker's kill escalation)
    FAKE_LOG_LINES    extra log lines printed per step (default 1)

Like the real trainer it checkpoints and exits 75 when STOP appears, and on --resume continues from
checkpoint.pth after dropping metrics records past the checkpoint's step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXIT_CANCELLED = 75


def _write_checkpoint(run_dir: Path, step: int) -> None:
    tmp = run_dir / ".checkpoint.tmp"
    tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, run_dir / "checkpoint.pth")


def _write_summary(run_dir: Path, status: str, step: int) -> None:
    (run_dir / "summary.json").write_text(json.dumps({"status": status, "step": step, "images_per_sec": 1.0}))


def _truncate_metrics(metrics: Path, last_step: int) -> None:
    if not metrics.is_file():
        return
    kept = [
        line
        for line in metrics.read_text().splitlines(keepends=True)
        if json.loads(line)["step"] <= last_step
    ]
    tmp = metrics.with_suffix(".tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, metrics)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("--config", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    run_dir = Path(args.output_dir)
    if not Path(args.config).is_file():
        print(f"lowdino {args.kind}: error: config file {args.config} does not exist", file=sys.stderr)
        return 2
    steps = int(os.environ.get("FAKE_STEPS", "20"))
    sleep = float(os.environ.get("FAKE_STEP_SLEEP", "0.01"))
    split = os.environ.get("FAKE_SPLIT_LINES") == "1"
    ckpt_every = int(os.environ.get("FAKE_CKPT_EVERY", "5"))
    ignore_stop = os.environ.get("FAKE_IGNORE_STOP") == "1"
    log_lines = int(os.environ.get("FAKE_LOG_LINES", "1"))
    metrics = run_dir / "metrics.jsonl"
    start = 0
    if args.resume:
        checkpoint = run_dir / "checkpoint.pth"
        if not checkpoint.is_file():
            print(f"lowdino {args.kind}: error: no checkpoint to resume in {run_dir}", file=sys.stderr)
            return 2
        start = json.loads(checkpoint.read_text())["step"]
        _truncate_metrics(metrics, start)
        print(f"resuming at step {start}", flush=True)
    print(f"fake {args.kind} starting, cuda={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}", flush=True)
    with metrics.open("a") as out:
        for step in range(start + 1, steps + 1):
            if not ignore_stop and (run_dir / "STOP").exists():
                _write_checkpoint(run_dir, step - 1)
                _write_summary(run_dir, "cancelled", step - 1)
                print(f"stop requested; checkpoint at step {step - 1}", flush=True)
                return EXIT_CANCELLED
            time.sleep(sleep)
            line = json.dumps(
                {"step": step, "epoch": 0, "time": time.time(), "total_steps": steps, "loss": 1 / step}
            )
            if split:
                half = len(line) // 2
                out.write(line[:half])
                out.flush()
                time.sleep(max(sleep, 0.05))
                out.write(line[half:] + "\n")
            else:
                out.write(line + "\n")
            out.flush()
            for index in range(log_lines):
                print(f"step {step}/{steps} line {index}", flush=True)
            if step % ckpt_every == 0:
                _write_checkpoint(run_dir, step)
    exit_code = int(os.environ.get("FAKE_EXIT", "0"))
    if exit_code:
        print("Traceback (most recent call last):", file=sys.stderr)
        print('  File "fake_trainer.py", line 1, in <module>', file=sys.stderr)
        print("RuntimeError: CUDA out of memory (fake)", file=sys.stderr, flush=True)
        return exit_code
    _write_checkpoint(run_dir, steps)
    _write_summary(run_dir, "completed", steps)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
