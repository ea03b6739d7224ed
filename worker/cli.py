"""`lowdino worker`: run a Celery worker for one GPU set (registered through the lowdino.commands entry point).

    lowdino worker                          # CPU and GPU queues, sees every GPU
    lowdino worker --gpus 0,1 --queues gpu  # runs on GPUs 0 and 1 only (CUDA_VISIBLE_DEVICES of its children)
    lowdino worker --gpus none --queues cpu # a CPU-only worker

One worker runs one run at a time (concurrency 1, prefetch 1); start one worker per GPU set. With
"gpu" among its queues, a worker with G GPUs also takes gpu2 .. gpuG, the queues of runs asking for
that many GPUs (server.workers.queues). The pool
is Celery's `solo`: the task runs in the worker process itself and the training runs in a child of
it, so (a) there is exactly one process between Celery and the trainer, which dies with the worker
(PR_SET_PDEATHSIG is bound to the thread that started it), and (b) the worker's shutdown signal reaches
the supervisor, which then lets the trainer checkpoint. A prefork pool process would add nothing: the
heavy work is already in a separate, ordinary process.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from lowdino.errors import ConfigError, LowDinoError
from server.workers.queues import expand_gpu_queues
from worker.identity import (
    ENV_GPUS,
    ENV_NAME,
    ENV_QUEUES,
    default_name,
    parse_gpus,
    parse_queues,
    visible_gpus,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "worker",
        help="Run a job-service worker (Celery) that executes queued runs.",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument(
        "--gpus",
        default=None,
        help="GPU indices this worker owns, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES for its runs); "
        "'none' hides all GPUs. Default: not pinned.",
    )
    parser.add_argument(
        "--queues", default="cpu,gpu", help="Comma-separated queues to take runs from [default: cpu,gpu]."
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="Runs at a time; must be 1 (start one worker per GPU set instead) [default: 1].",
    )
    parser.add_argument("--name", default=None, help="Worker name [default: <cpu|gpuIDS>-<pid>@<host>].")
    parser.add_argument(
        "--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="[default: INFO]"
    )
    parser.set_defaults(func=run_worker)


def celery_argv(*, name: str, queues: tuple[str, ...], loglevel: str) -> list[str]:
    """The `celery worker` arguments of a LowDINO worker (see the module docstring)."""
    return [
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--prefetch-multiplier=1",
        f"--queues={','.join(queues)}",
        f"--hostname={name}",
        f"--loglevel={loglevel}",
        # Gossip and mingle exchange state between workers over broadcast; runs are coordinated through
        # the database instead, and mingle would delay start-up by a second per worker.
        "--without-gossip",
        "--without-mingle",
    ]


def run_worker(args: argparse.Namespace) -> int:
    if args.concurrency != 1:
        raise ConfigError(
            f"--concurrency {args.concurrency}: a worker runs one run at a time on its GPU set; "
            "start one `lowdino worker --gpus ...` per GPU set instead"
        )
    gpus = parse_gpus(args.gpus)
    # A worker that takes "gpu" runs also takes the gpuN queues of runs it has the GPUs for (server.workers.queues).
    queues = expand_gpu_queues(parse_queues(args.queues), len(gpus if gpus is not None else visible_gpus()))
    name = args.name or default_name(gpus, socket.gethostname(), os.getpid())
    if "@" not in name:
        name = f"{name}@{socket.gethostname()}"
    # The Celery app and the task read these when they are imported below (and so would a plain
    # `celery -A worker.celery_app worker` started with the same variables).
    os.environ[ENV_NAME] = name
    os.environ[ENV_QUEUES] = ",".join(queues)
    if gpus is not None:
        os.environ[ENV_GPUS] = ",".join(map(str, gpus)) or "none"
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    check_database()
    from worker.celery_app import app

    app.worker_main(celery_argv(name=name, queues=queues, loglevel=args.loglevel))
    return 0


def check_database() -> None:
    """Fail fast with one line when the settings or the database are unusable (before Celery starts)."""
    from server.settings import load_settings
    from server.storage.engine import migrate_database

    migrate_database(load_settings().database_url)


def main(argv: list[str] | None = None) -> int:
    """`python -m worker.cli ...`: the same command without the rest of the `lowdino` CLI."""
    parser = argparse.ArgumentParser(prog="lowdino")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["worker", *(argv if argv is not None else sys.argv[1:])])
    try:
        return int(args.func(args))
    except LowDinoError as exc:
        print(f"lowdino worker: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
