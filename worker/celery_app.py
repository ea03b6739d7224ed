"""The Celery app of the job service, configured from `server.settings.Settings` (LOWDINO_* variables).

Broker
    Embedded default: kombu's SQLAlchemy transport on a SQLite file (``sqla+sqlite:///<home>/broker.db``).
    Chosen over the filesystem transport because (a) its whole configuration is the URL, so the API
    (publisher) and the worker (consumer) cannot disagree about folders; (b) a message is claimed
    inside a ``BEGIN IMMEDIATE`` transaction, so two workers never take the same message, whereas the
    filesystem transport claims by moving a file into the temp folder, which is a non-atomic copy
    when /tmp is another filesystem; (c) it needs no directory set-up. What it lacks (fanout, so no
    `celery inspect` / remote control) we do not use: cancel goes through the database and the STOP
    file, never through revoke. At scale: ``LOWDINO_BROKER_URL=redis://host:6379/0``.

No result backend
    The database, not the broker, is the source of truth for run state (the supervisor writes status,
    metrics, logs and errors there), so task results are ignored.

Delivery: late ack, prefetch 1, concurrency 1
    A worker owns one GPU set and runs one run at a time. The message is acknowledged when the task
    returns (``task_acks_late``), and prefetch is 1, so while a run trains for hours the worker holds
    exactly that one message and the next one stays in the broker for any idle worker. (Early ack
    with prefetch 1 would let the busy worker reserve a second message and sit on it for hours.)
    The price of late ack is redelivery: of an unacked message when a worker dies (Redis after the
    visibility timeout, which is set to 7 days, longer than any run, so a healthy long run is never
    redelivered). A redelivered message is harmless: the supervisor claims a run with an atomic
    ``UPDATE runs SET status='running' WHERE id=? AND status='queued'``, and a run that is running,
    interrupted or finished is refused, so a run never executes twice. A worker killed mid-run leaves
    its run to the heartbeat reaper (-> interrupted) and the user's resume (-> queued again).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from server.settings import Settings, get_settings

TASK_NAME = "lowdino.run"
# Longer than any run: Redis redelivers an unacknowledged message after this long.
REDIS_VISIBILITY_TIMEOUT_S = 7 * 24 * 3600
# kombu's SQLAlchemy transport passes its options to create_engine(); a generous SQLite lock wait keeps
# the API's publish and the worker's poll from failing with "database is locked" under contention.
SQLITE_BROKER_TIMEOUT_S = 30


def broker_transport_options(broker_url: str) -> dict[str, Any]:
    """Transport options that suit `broker_url` (they differ per transport and are not interchangeable)."""
    scheme = broker_url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "sentinel", "sqs"):
        return {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S}
    if scheme.startswith(("sqla+sqlite", "sqlalchemy+sqlite")):
        return {"connect_args": {"timeout": SQLITE_BROKER_TIMEOUT_S}}
    return {}


def make_celery(settings: Settings | None = None) -> Celery:
    """A Celery app for `settings` (default: from the environment). The API uses it only to send."""
    settings = settings or get_settings()
    app = Celery("lowdino", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        broker_transport_options=broker_transport_options(settings.broker_url),
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        # Only meaningful for the prefork pool (a pool child killed mid-task): requeue, and let the DB claim
        # decide. With the solo pool a dead child means a dead worker, handled by the heartbeat reaper.
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        task_default_queue="cpu",
        task_create_missing_queues=True,
        task_serializer="json",
        accept_content=["json"],
        # Runs are tracked in the database; Celery's own task events would only add broker traffic.
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    return app


app = make_celery()


def send_run(celery: Celery, run_id: str, *, queue: str = "cpu") -> str:
    """Enqueue `run_id` by task name (what the API does); returns the Celery task id."""
    return str(celery.send_task(TASK_NAME, args=[run_id], queue=queue).id)
