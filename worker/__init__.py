"""LowDINO's Celery worker: one task, `lowdino.run`, that supervises a training child process.

The task is a thin adapter over plain functions (`worker.supervisor`), which claim the run in the
database, start `python -m lowdino ...` in the run directory, stream its metrics and log lines into
the database and record the outcome. The database is the source of truth for run state.
"""
