"""One connection to a LowDINO server: JSON requests with the bearer token, errors as one line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lowdino.errors import LowDinoError

if TYPE_CHECKING:
    import httpx

SERVER_ENV = "LOWDINO_SERVER"
TOKEN_ENV = "LOWDINO_API_TOKEN"
DEFAULT_SERVER = "http://127.0.0.1:8000"


class ServerError(LowDinoError):
    """The server refused a request or could not be reached; the message is its own explanation."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:  # the library's own dependencies do not include an HTTP client
        raise ServerError(
            "`lowdino runs` needs httpx; install it with pip install 'lowdino[client]'"
        ) from None
    return httpx


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:200] or response.reason_phrase}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # request validation: [{loc, msg}]
        return "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', [])[1:]) or 'request'}: {item.get('msg')}"
            for item in detail
        )
    return str(detail) if detail else f"HTTP {response.status_code}"


class ServerClient:
    """`base_url` defaults to $LOWDINO_SERVER, `token` to $LOWDINO_API_TOKEN."""

    def __init__(
        self, base_url: str | None = None, token: str | None = None, *, timeout: float = 30.0
    ) -> None:
        self.base_url = (base_url or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = _httpx().Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        httpx = _httpx()
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(
                f"no answer from {self.base_url} ({exc}); start it with `lowdino serve` or pass --server URL"
            ) from None
        if response.status_code >= 400:
            hint = " (pass --token or set LOWDINO_API_TOKEN)" if response.status_code == 401 else ""
            raise ServerError(f"{method} {path}: {_detail(response)}{hint}", status=response.status_code)
        return None if response.status_code == 204 else response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body)

    @contextmanager
    def stream_lines(self, path: str, **params: Any) -> Iterator[Iterator[str]]:
        """The response's lines as they arrive (an event stream has no end and no read timeout)."""
        httpx = _httpx()
        timeout = httpx.Timeout(10.0, read=None)
        try:
            with self._client.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(f"GET {path}: {_detail(response)}", status=response.status_code)
                yield response.iter_lines()
        except httpx.TransportError as exc:
            raise ServerError(f"the event stream of {self.base_url} broke ({exc})") from None
