"""The API's contract: one error body for every 4xx, and an OpenAPI document that says what is enforced.

Every error answers ``{"detail": "<one line: cause and fix>", "field_errors": {field: message} | null}``
(`server.schemas.Message`), request-validation errors included (FastAPI's default is a list, which a
client generated from the schema could not parse). A body that cannot be read (not UTF-8: FastAPI's
400 "There was an error parsing the body") is a 422 like malformed JSON. A 405 names in `Allow` every
method the path has, not only those of the first route that matched it. Operations with a body document
the 413 of bodies above LOWDINO_MAX_BODY_BYTES. Bearer auth is declared only
when the server has a token, so the schema never asks a client for credentials the server does not check.

Run configs are stated per kind (`server.http.request_schemas`): a config the document allows is
accepted, one it refuses is a 422, with two kinds of exception, each a 409 documented on the operation
(`server.schemas.CONFLICT_DESCRIPTION`) because no static schema can state it:

* this server's state (`server.errors.ServerStateError`): a path that leads outside its data roots
  (they are settings; symlinks are resolved), GPUs that no live worker has, a sweep above its
  run limit, a clone option that the original run's kind lacks;
* rules between options that JSON Schema cannot express (`server.errors.OptionsConflictError`):
  comparisons of two values (`local_crop_size <= global_crop_size`, `warmup_teacher_temp_epochs <=
  n_epochs`), and the model's rules on a config merged from parts the document states one by one
  (a sweep's base, grid and overrides; clone and study overrides over the original's or the preset's).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lowdino.errors import LowDinoError
from server.errors import ServiceError
from server.http.request_schemas import rewrite_request_bodies

MESSAGE_REF = {"$ref": "#/components/schemas/Message"}
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def error_body(detail: str, field_errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {"detail": detail, "field_errors": field_errors or None}


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, ServiceError) else 422
    return JSONResponse(error_body(str(exc), getattr(exc, "field_errors", None)), status_code=status)


def _location(loc: tuple[Any, ...]) -> str:
    # ("query", "limit") -> "limit"; ("body", "config", "lr") -> "config.lr"
    parts = (
        [str(part) for part in loc[1:]]
        if loc and loc[0] in ("query", "path", "body", "header")
        else list(map(str, loc))
    )
    return ".".join(parts) or "request"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = {
        _location(tuple(item.get("loc", ()))): str(item.get("msg", "invalid")) for item in exc.errors()
    }
    detail = "; ".join(f"{field}: {message}" for field, message in problems.items())
    return JSONResponse(error_body(f"invalid request: {detail}", problems), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not read the body
        message = f"not a JSON body ({type(exc.__cause__).__name__}); send UTF-8 JSON"
        return JSONResponse(
            error_body(f"invalid request: body: {message}", {"body": message}), status_code=422
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(_methods_of_path(request)))
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(error_body(detail), status_code=exc.status_code, headers=headers)


def _methods_of_path(request: Request) -> set[str]:
    """The methods the API document lists for the request's path (what a client may send there).

    Read from the OpenAPI document rather than the router: FastAPI wraps included routers, so the first
    route that partially matches knows only its own method.
    """
    path = request.url.path
    methods = {
        method
        for pattern, documented in _documented_paths(request.app)
        if pattern.fullmatch(path)
        for method in documented
    }
    return methods or {"GET"}


def _documented_paths(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    cached = getattr(app.state, "documented_paths", None)
    if cached is None:
        cached = [
            (
                re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))),
                {method.upper() for method in operations if method.upper() in HTTP_METHODS},
            )
            for template, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.documented_paths = cached
    return cached


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LowDinoError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def install_openapi(app: FastAPI, *, auth_enabled: bool) -> None:
    """`app.openapi()` rewritten to the contract above (built once, then cached like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        rewrite_request_bodies(schemas)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if "requestBody" in operation:  # server.http.security.BodySizeLimit
                    responses.setdefault(
                        "413",
                        {
                            "description": "The body is larger than the server allows (LOWDINO_MAX_BODY_BYTES).",
                            "content": {"application/json": {"schema": MESSAGE_REF}},
                        },
                    )
                if "422" in responses:
                    responses["422"] = {
                        "description": responses["422"].get("description", "Invalid request"),
                        "content": {"application/json": {"schema": MESSAGE_REF}},
                    }
                if not auth_enabled:
                    operation.pop("security", None)
        if not auth_enabled:
            components.pop("securitySchemes", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
