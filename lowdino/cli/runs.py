"""`lowdino runs list|show|submit|watch|cancel|resume`: the job service from the terminal, over HTTP.

The server is --server URL (default $LOWDINO_SERVER, else http://127.0.0.1:8000), the token --token
(default $LOWDINO_API_TOKEN). `submit` takes the YAML that `lowdino pretrain --config` takes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lowdino.client.api import DEFAULT_SERVER, SERVER_ENV, TOKEN_ENV, ServerClient
from lowdino.client.progress import ProgressDisplay, duration, metric_text
from lowdino.client.watch import exit_code_for, follow_run
from lowdino.config import CONFIG_MODELS, RunKind
from lowdino.config.loading import build_config, read_yaml

EXAMPLES = """examples:
  export LOWDINO_SERVER=http://gpu-box:8000
  lowdino runs list --where "backbone = 'resnet5m' and knn_top1 > 30"
  lowdino runs submit --config configs/quickstart.yaml --name first --watch
  lowdino runs watch 3f2a9c81d0e4
  lowdino runs cancel 3f2a9c81d0e4 && lowdino runs resume 3f2a9c81d0e4 --watch
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        metavar="URL",
        default=None,
        help=f"the service (default ${SERVER_ENV}, else {DEFAULT_SERVER})",
    )
    common.add_argument("--token", default=None, help=f"its API token (default ${TOKEN_ENV})")
    parser = subparsers.add_parser(
        "runs",
        help="list, submit, follow, cancel and resume runs of a LowDINO server",
        description="Talk to a running `lowdino serve` over its REST API and event stream.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="runs, newest first")
    listing.add_argument("--where", help="a query, e.g. \"backbone = 'resnet5m' and knn_top1 > 30\"")
    listing.add_argument("--search", "-q", help="substring of the name, id or notes")
    listing.add_argument("--status", action="append", help="only this status (repeatable)")
    listing.add_argument("--kind", help="only this run kind")
    listing.add_argument("--tag", help="only runs with this tag")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    listing.set_defaults(func=list_runs)

    show = actions.add_parser("show", parents=[common], help="one run: status, progress, metrics, notes")
    show.add_argument("run_id", metavar="RUN")
    show.add_argument("--json", action="store_true", help="the API's JSON")
    show.set_defaults(func=show_run)

    submit = actions.add_parser("submit", parents=[common], help="queue a run from a YAML config")
    submit.add_argument(
        "--config", metavar="FILE.yaml", required=True, help="as for `lowdino pretrain --config`"
    )
    submit.add_argument(
        "--kind",
        default=RunKind.PRETRAIN.value,
        choices=[kind.value for kind in RunKind],
        help="the run kind the YAML is for (default pretrain)",
    )
    submit.add_argument("--name", help="a label shown in lists")
    submit.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    submit.add_argument("--watch", action="store_true", help="then follow it, as `lowdino runs watch`")
    submit.set_defaults(func=submit_run)

    watch = actions.add_parser(
        "watch", parents=[common], help="follow a run live; exits 0 completed, 75 cancelled, 1 failed"
    )
    watch.add_argument("run_id", metavar="RUN")
    watch.set_defaults(func=watch_run)

    cancel = actions.add_parser("cancel", parents=[common], help="cancel a queued or running run")
    cancel.add_argument("run_id", metavar="RUN")
    cancel.set_defaults(func=lambda args: _act(args, "cancel"))

    resume = actions.add_parser("resume", parents=[common], help="resume a stopped run from its checkpoint")
    resume.add_argument("run_id", metavar="RUN")
    resume.add_argument("--watch", action="store_true", help="then follow it")
    resume.set_defaults(func=lambda args: _act(args, "resume"))


def _client(args: argparse.Namespace) -> ServerClient:
    return ServerClient(args.server, args.token)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _knn(run: dict[str, Any]) -> str:
    latest = run.get("latest_metrics") or {}
    value = latest.get("knn_top1")
    return f"{value:.2f} %" if isinstance(value, int | float) else "–"


def _progress(run: dict[str, Any]) -> str:
    progress = run.get("progress") or {}
    if progress.get("fraction") is None:
        return "–"
    return f"{progress['fraction'] * 100:.0f} %"


def list_runs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        body = client.get(
            "/api/runs",
            where=args.where,
            q=args.search,
            status=args.status,
            kind=args.kind,
            tag=args.tag,
            limit=args.limit,
        )
    if args.json:
        _print_json(body)
        return 0
    header = ("ID", "NAME", "STATUS", "KIND", "BACKBONE", "DONE", "KNN TOP-1", "TAGS")
    rows = [
        (
            run["id"],
            (run.get("name") or "")[:30],
            run["status"],
            run["kind"],
            run.get("backbone") or "–",
            _progress(run),
            _knn(run),
            ",".join(run.get("tags") or []),
        )
        for run in body["data"]
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    shown = len(rows)
    if body["count"] > shown:
        print(f"({shown} of {body['count']} runs; --limit to see more)")
    return 0


def show_run(args: argparse.Namespace) -> int:
    with _client(args) as client:
        run = client.get(f"/api/runs/{args.run_id}")
    if args.json:
        _print_json(run)
        return 0
    progress = run.get("progress") or {}
    facts = [
        ("run", f"{run['id']}  {run.get('name') or ''}".rstrip()),
        ("status", run["status"] + (f" (exit code {run['exit_code']})" if run.get("exit_code") else "")),
        ("kind", run["kind"]),
        ("backbone", run.get("backbone") or "–"),
        ("tags", ", ".join(run.get("tags") or []) or "–"),
        ("progress", f"step {progress.get('step')}/{progress.get('total_steps')}  {_progress(run)}"),
        ("eta", duration(progress.get("eta_seconds"))),
        ("metrics", metric_text(run.get("latest_metrics") or {}) or "–"),
        ("created", run.get("created_at")),
        ("directory", run.get("output_dir") or "–"),
    ]
    if run.get("error"):
        facts.append(("error", run["error"]))
    for label, value in facts:
        print(f"{label:>10}  {value}")
    if run.get("notes"):
        print("\nnotes:\n" + run["notes"])
    return 0


def _read_config(path: str, kind: str) -> dict[str, Any]:
    """The file's options as `lowdino <kind> --config` reads them (the same YAML reader and model, so
    `lr: 1e-3` is a number and a typo is named here), sent as JSON: only the options the file sets."""
    given = read_yaml(path)
    values = build_config(CONFIG_MODELS[kind], file=path).model_dump(mode="json")
    return {key: values[key] for key in given if key in values}


def submit_run(args: argparse.Namespace) -> int:
    config = _read_config(args.config, args.kind)
    with _client(args) as client:
        # A run's own config.yaml names its output_dir (and resume): the server sets those itself.
        owned = [field for field in client.get("/api/catalog")["server_owned_fields"] if field in config]
        for field in owned:
            del config[field]
        if owned:
            print(f"note: left out {', '.join(owned)} (the server sets them for its runs)", file=sys.stderr)
        run = client.post(
            "/api/runs", {"kind": args.kind, "name": args.name, "tags": args.tag, "config": config}
        )
        print(f"queued {run['kind']} run {run['id']}  {client.base_url}/runs/{run['id']}")
        if run.get("warning"):
            print(f"warning: {run['warning']}", file=sys.stderr)
        if args.watch:
            return _watch(client, run["id"])
    return 0


def _watch(client: ServerClient, run_id: str) -> int:
    def display_for(run: dict[str, Any]) -> ProgressDisplay:
        return ProgressDisplay(
            sys.stdout, interactive=sys.stdout.isatty(), label=run.get("name") or run["id"]
        )

    final = follow_run(client, run_id, display_for)
    return exit_code_for(final["status"])


def watch_run(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _watch(client, args.run_id)


def _act(args: argparse.Namespace, action: str) -> int:
    with _client(args) as client:
        run = client.post(f"/api/runs/{args.run_id}/{action}")
        word = "cancel requested" if run.get("cancel_requested") else run["status"]
        print(f"run {run['id']}: {word}")
        if action == "resume" and args.watch:
            return _watch(client, run["id"])
    return 0
