"""`lowdino serve`: the API (uvicorn) plus, by default, one worker process — no other servers needed.

    lowdino serve                      # http://127.0.0.1:8000, SQLite + file broker under ~/.lowdino
    lowdino serve --no-worker          # API only (workers run elsewhere: `lowdino worker --gpus 0,1 --queues gpu`)
    LOWDINO_DATABASE_URL=postgresql+psycopg://... LOWDINO_BROKER_URL=redis://... lowdino serve --no-worker

The worker is `lowdino worker --queues cpu,gpu` as a child process with the same environment; it is
restarted (with backoff) whenever it dies unasked, stopped (SIGTERM: the trainer checkpoints, then it
exits) when the server exits, and it dies with the server even if the server is killed (Linux
parent-death signal); see server.workers.embedded.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from lowdino.errors import ConfigError
from server.http.protections import is_wildcard_bind
from server.http.security import is_loopback
from server.settings import Settings, load_settings
from server.storage.engine import migrate_database
from server.workers.embedded import EmbeddedWorker

log = logging.getLogger("lowdino.server")
SHUTDOWN_GRACE_S = 5


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "serve",
        help="Start the job service: REST API (+ browser pages) and one worker unless --no-worker.",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind [default: 127.0.0.1].")
    parser.add_argument("--port", type=int, default=8000, help="Port [default: 8000].")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="API only; run `lowdino worker` separately (e.g. on GPU hosts).",
    )
    parser.add_argument(
        "--migrate-only",
        action="store_true",
        help="Bring the database schema to the current version and exit (a one-shot step before API "
        "replicas start; they would otherwise each migrate at start, serialised by a lock on PostgreSQL).",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="Also accept requests whose Host is NAME (repeatable; adds to LOWDINO_ALLOWED_HOSTS; "
        "'*.example.com' patterns; '*' any). Loopback names, this machine's names and --host always are.",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="[default: info]",
    )
    parser.set_defaults(func=serve)


def check_port(host: str, port: int) -> None:
    """ConfigError (one line) when the address cannot be bound, before a worker is started for nothing."""
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port; pass 1-65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use; pass another --port") from exc
            raise ConfigError(f"cannot bind {host}:{port} ({exc.strerror}); check --host") from exc


def migrate(settings: Settings) -> int:
    """`serve --migrate-only`: alembic upgrade head, one line on success, a one-line error otherwise."""
    from sqlalchemy.engine import make_url

    revision = migrate_database(settings.database_url)
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"database {shown} is at revision {revision}", file=sys.stderr, flush=True)
    return 0


def _forget_worker(app: Any) -> Callable[[str], None]:
    def forget(name: str) -> None:
        from server.storage.engine import session_scope
        from server.workers import queries as worker_queries

        with session_scope(app.state.engine) as session:
            worker_queries.remove_worker(session, name=name)

    return forget


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.http.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise here
    settings = load_settings()
    if args.migrate_only:
        return migrate(settings)
    extra_hosts = [*args.allowed_host, *([] if is_wildcard_bind(args.host) else [args.host])]
    settings = settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, *extra_hosts]})
    if not settings.api_token and not is_loopback(args.host):
        log.warning(
            "serving on %s without LOWDINO_API_TOKEN: anyone who can reach this host can start runs and "
            "read results; set LOWDINO_API_TOKEN or bind 127.0.0.1",
            args.host,
        )
    check_port(args.host, args.port)
    app = create_app(settings)  # migrates the database before the worker connects to it
    worker = None
    if not args.no_worker:
        worker = EmbeddedWorker(forget=_forget_worker(app))
        worker.start()
        worker.wait_started()
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"LowDINO dashboard: http://{shown_host}:{args.port}  "
        f"(REST API under /api, docs at /docs; data in {settings.home}; Ctrl+C stops)",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn handles SIGINT/SIGTERM while it serves, then re-raises the signal once it has shut down.
    # Ignoring that echo lets the worker be stopped properly and the command exit 0; a second Ctrl+C
    # while waiting for the worker interrupts the wait (and kills it).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore_signal)
    try:
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        _Server(config, app.state.stopping).run()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if worker is not None:
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl+C: the worker was killed
                worker.stop()
    return 0


class _Server:
    """uvicorn.Server that also tells open event streams to end when shutdown starts.

    uvicorn waits for open connections before it shuts down, and an event stream never ends by
    itself; `stopping` (polled by server.events.sse) lets them finish within one poll interval.
    """

    def __new__(cls, config: Any, stopping: threading.Event) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                stopping.set()
                super().handle_exit(sig, frame)

        return Server(config)


def _ignore_signal(_signum: int, _frame: object) -> None:
    pass
