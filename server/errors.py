"""Errors of the job service; each is a `LowDinoError` (one line: cause and fix) with an HTTP status."""

from __future__ import annotations

from lowdino.errors import LowDinoError


class ServiceError(LowDinoError):
    """Base of the service's user-facing errors; `status_code` is what the API answers."""

    status_code = 400


class RunNotFoundError(ServiceError):
    status_code = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} does not exist; list runs with GET /api/runs")
        self.run_id = run_id


class RunStateError(ServiceError):
    """The run is in a state that does not allow the operation (e.g. deleting a running run)."""

    status_code = 409


class InvalidRequestError(ServiceError):
    """A well-formed request whose content is unacceptable (bad path, unknown key...).

    `field_errors` (config field -> message) lets a form show each message at its field.
    """

    status_code = 422

    def __init__(self, message: str, *, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field_errors = dict(field_errors or {})

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidRequestError:
        """'config.<field>: <message>', with the message also keyed by the field."""
        return cls(f"config.{field}: {message}", field_errors={field: message})


class ServerStateError(InvalidRequestError):
    """A request the schema allows that this server refuses because of what it has or how it is set up:
    a path outside its data roots, a sweep above its run limit, GPUs that no live worker has.

    No static schema can state these, so they answer 409 (the request conflicts with the server's
    state), not 422 (the request itself is invalid); the body names the field and the fix as usual.
    """

    status_code = 409


class OptionsConflictError(InvalidRequestError):
    """Options valid one by one that a rule between them refuses, where the API's schema cannot state
    the rule: a comparison of two values (local_crop_size above global_crop_size), or a config merged
    from parts (a sweep's grid and overrides over its base, clone and study overrides over the
    original's or the preset's options). 409: the schema allowed the request."""

    status_code = 409


class UnstatedGrammarError(InvalidRequestError):
    """Text the schema allows (any printable string) that a grammar no JSON Schema can state refuses:
    GET /api/runs?where=. 409 like the other rules the document leaves unstated; the message names the
    offending token and its position."""

    status_code = 409


class ArtifactNotFoundError(ServiceError):
    status_code = 404


class BrokerUnavailableError(ServiceError):
    status_code = 503


class SweepNotFoundError(ServiceError):
    status_code = 404

    def __init__(self, sweep_id: str) -> None:
        super().__init__(f"sweep {sweep_id!r} does not exist; list sweeps with GET /api/sweeps")
        self.sweep_id = sweep_id


class SearchNotFoundError(ServiceError):
    status_code = 404

    def __init__(self, search_id: str) -> None:
        super().__init__(f"search {search_id!r} does not exist; list searches with GET /api/searches")
        self.search_id = search_id
