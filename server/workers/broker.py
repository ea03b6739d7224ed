"""The Celery app factory of the API and the worker; the API sends "lowdino.run" by name and never imports worker/.

Publishing retries only briefly (a few hundred ms): when the broker is down the request answers
503 with the cause instead of hanging for Celery's default retry schedule.
"""

from __future__ import annotations

from typing import Any, Literal

from celery import Celery

from server.errors import BrokerUnavailableError
from server.workers.queues import CPU_QUEUE, TASK_NAME

PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}
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


def make_celery(broker_url: str, *, role: Literal["api", "worker"] = "api") -> Celery:
    """The one Celery app factory: the API publishes with it, `lowdino worker` consumes with it.

    Both ends share the broker URL, transport options, serialiser and task name, so they cannot
    drift apart. The API only fails fast on an unreachable broker (a request answers 503 at once);
    the worker registers the task and retries its connection at start.
    """
    app = Celery(
        "lowdino",
        broker=broker_url,
        set_as_current=role == "worker",
        include=["worker.tasks"] if role == "worker" else [],
    )
    app.conf.update(
        broker_transport_options=broker_transport_options(broker_url),
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=CPU_QUEUE,
        enable_utc=True,
    )
    if role == "api":
        app.conf.update(broker_connection_timeout=2.0, broker_connection_retry_on_startup=False)
    else:
        app.conf.update(
            broker_connection_retry_on_startup=True,
            task_acks_late=True,
            # Only meaningful for the prefork pool (a pool child killed mid-task): requeue, and let the DB
            # claim decide. With the solo pool a dead child means a dead worker, handled by the reaper.
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            worker_concurrency=1,
            task_create_missing_queues=True,
            # Runs are tracked in the database; Celery's own task events would only add broker traffic.
            worker_send_task_events=False,
            task_send_sent_event=False,
        )
    return app


def send_run(celery_app: Celery, *, run_id: str, queue: str) -> str:
    """Publish the run's task to `queue`; returns the Celery task id."""
    try:
        result = celery_app.send_task(
            TASK_NAME, args=[run_id], queue=queue, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # kombu raises OperationalError, ConnectionError, socket errors...
        raise BrokerUnavailableError(
            f"could not queue run {run_id}: broker {_safe_url(celery_app)} is unreachable "
            f"({exc.__class__.__name__}); start it or fix LOWDINO_BROKER_URL, then POST /resume or resubmit"
        ) from exc
    return str(result.id)


def broker_reachable(celery_app: Celery, *, timeout: float = 1.0) -> tuple[bool, str | None]:
    """(reachable, error) by opening and closing one broker connection."""
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True, None
    except Exception as exc:
        return False, f"{exc.__class__.__name__}: {exc}"[:300]


def _safe_url(celery_app: Celery) -> str:
    """The broker URL without its password."""
    url: Any = celery_app.conf.broker_url
    try:
        from kombu.utils.url import maybe_sanitize_url

        return str(maybe_sanitize_url(url))
    except Exception:
        return "(configured broker)"
