"""Browser-facing protections: Host allowlist, Origin check, CORS and security headers (ASGI middleware).

Binding 127.0.0.1 does not keep web pages out: by DNS rebinding a page on evil.example.com gets its
name resolved to 127.0.0.1 and drives the local API from the visitor's browser. Such a request still
carries ``Host: evil.example.com``, so the Host header is checked against

    loopback names (localhost, 127.0.0.1, ::1), this machine's host names, the address the request
    arrived on (an IP literal is never a rebinding), the `serve --host` name, and LOWDINO_ALLOWED_HOSTS
    (or `serve --allowed-host`; '*.example.com' patterns; '*' turns the check off)

and any other Host gets 400. A state-changing request (POST/PUT/PATCH/DELETE) that a browser sent
from another origin (its ``Origin`` differs from the Host and is not in LOWDINO_CORS_ORIGINS) gets 403:
it could otherwise be a form posted by any page. CORS answers only LOWDINO_CORS_ORIGINS (Starlette's
CORSMiddleware). Every response gets X-Frame-Options, X-Content-Type-Options, Referrer-Policy and the
dashboard's Content-Security-Policy, unless the route set its own CSP (/docs, /redoc: server.http.web).

The same policy as MLflow's since 3.5; written here rather than Starlette's TrustedHostMiddleware
because the defaults depend on the address a request arrived on and the answer must name the fix.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import LOOPBACK_HOSTS, Settings

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The dashboard: ES modules and Plotly from /static, Plotly's inline styles, chart PNG export via
# data:/blob: images; nothing from another origin, and no framing by other sites.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'self'; worker-src 'self' blob:"
)
SECURITY_HEADERS = (
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", DASHBOARD_CSP.encode()),
)
DEFAULT_PORTS = {"http": "80", "https": "443"}


def split_host(value: str) -> tuple[str, str | None]:
    """'Example.org:8000' -> ('example.org', '8000'); '[::1]:80' -> ('::1', '80')."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None


def machine_names() -> set[str]:
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):  # resolver trouble: the short name is enough
        names.add(socket.getfqdn().lower())
    return names


def is_wildcard_bind(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


class HostPolicy:
    """Which Host header values and which Origins this server accepts (see the module docstring)."""

    def __init__(self, allowed_hosts: Iterable[str], cors_origins: Iterable[str]) -> None:
        patterns = {entry.strip().lower() for entry in allowed_hosts if entry.strip()}
        self.any_host = "*" in patterns
        self.patterns = {split_host(entry)[0] for entry in patterns if entry != "*"}
        self.names = set(LOOPBACK_HOSTS) | machine_names()
        self.cors_origins = [origin.lower().rstrip("/") for origin in cors_origins]
        self.any_origin = "*" in self.cors_origins

    def host_allowed(self, host_header: str, local_address: str | None) -> bool:
        if self.any_host:
            return True
        host, _port = split_host(host_header)
        if not host:
            return True  # only HTTP/1.0 clients omit Host, and browsers never do: nothing to rebind
        if host in self.names or host == (local_address or "").lower():
            return True
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.patterns)

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if self.any_origin or origin in self.cors_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return False  # "null" (sandboxed frames, file: pages) and other schemes are never same-origin
        origin_host, origin_port = split_host(parts.netloc)
        host, port = split_host(host_header)
        default = DEFAULT_PORTS[parts.scheme]
        return origin_host == host and (origin_port or default) == (port or default)


def _json_response(status: int, detail: str) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return (
        {"type": "http.response.start", "status": status, "headers": headers + list(SECURITY_HEADERS)},
        {"type": "http.response.body", "body": body},
    )


class BrowserProtections:
    """The ASGI middleware: Host check, cross-origin write check, security headers on every response."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope.get("headers") or []}
        host = headers.get(b"host", b"").decode("latin-1")
        server = scope.get("server")
        local_address = str(server[0]) if server else None
        if not self.policy.host_allowed(host, local_address):
            shown = split_host(host)[0] or "(none)"
            await self._reject(
                send,
                400,
                f"Host {shown!r} is not allowed (DNS rebinding protection); if you reach LowDINO under "
                f"this name, add it to LOWDINO_ALLOWED_HOSTS or pass `lowdino serve --allowed-host {shown}`",
            )
            return
        origin = headers.get(b"origin")
        if (
            origin is not None
            and scope.get("method", "GET").upper() in STATE_CHANGING
            and not self.policy.origin_allowed(origin.decode("latin-1"), host)
        ):
            shown = origin.decode("latin-1")
            await self._reject(
                send,
                403,
                f"cross-origin {scope['method']} from {shown} refused; if that web app may drive this "
                f"API, add {shown} to LOWDINO_CORS_ORIGINS",
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key, value) for key, value in SECURITY_HEADERS if key not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _reject(self, send: Send, status: int, detail: str) -> None:
        start, body = _json_response(status, detail)
        await send(start)
        await send(body)


def install_protections(app: FastAPI, settings: Settings) -> None:
    """Outermost middleware: call after every other `add_middleware` (the last added runs first)."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )
    app.add_middleware(BrowserProtections, policy=HostPolicy(settings.allowed_hosts, settings.cors_origins))
