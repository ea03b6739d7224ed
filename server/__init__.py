"""LowDINO job service: FastAPI app, SQLAlchemy data layer, Alembic migrations and `lowdino serve`.

The data layer (`server.settings`, `server.storage.engine`, `server.models`, `server.crud`) is shared with the
Celery worker; the API (`server.http.app`, `server.api`) is not imported by it.
"""
