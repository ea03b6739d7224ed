"""Container health checks: `python -m server.http.healthcheck api|worker ...`; exit 0 healthy, 1 not (one line why).

    python -m server.http.healthcheck api [--url http://127.0.0.1:8000/api/health]
    python -m server.http.healthcheck worker --name gpu0      # that worker's heartbeat is recent

The worker check reads the worker's heartbeat from the database rather than `celery inspect ping`:
the solo pool answers remote control only between tasks, so a worker busy with a run for hours
would look dead to a ping, while its heartbeat keeps coming (server.workers.queries).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import urllib.error
import urllib.request


def check_api(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"{url}: {exc}"
    # A degraded API (no worker yet, broker down) still serves: only an unanswered probe is unhealthy.
    return True, f"{url}: {body.get('status')}" + (f" ({body['detail']})" if body.get("detail") else "")


def check_worker(name: str) -> tuple[bool, str]:
    from server.settings import get_settings
    from server.storage.engine import create_db_engine, session_scope
    from server.workers.liveness import live_workers

    full_name = name if "@" in name else f"{name}@{socket.gethostname()}"
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            alive = any(worker.name == full_name for worker in live_workers(session, settings))
    except Exception as exc:  # the database is down: unhealthy, with the reason
        return False, f"cannot read worker heartbeats: {exc.__class__.__name__}: {str(exc)[:200]}"
    finally:
        engine.dispose()
    if alive:
        return True, f"worker {full_name}: heartbeat within {settings.heartbeat_timeout:.0f} s"
    return False, f"worker {full_name}: no heartbeat within {settings.heartbeat_timeout:.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.http.healthcheck", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    api = sub.add_parser("api")
    api.add_argument("--url", default="http://127.0.0.1:8000/api/health")
    worker = sub.add_parser("worker")
    worker.add_argument("--name", required=True, help="The worker's --name (the host is added if missing).")
    args = parser.parse_args(argv)
    ok, line = check_api(args.url) if args.what == "api" else check_worker(args.name)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
