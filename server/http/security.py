"""Bearer-token auth and the request-body size limit.

With `LOWDINO_API_TOKEN` set, every endpoint but /api/health needs ``Authorization: Bearer <token>``
or the dashboard's session cookie. The browser logs in once (POST /api/session with the token); the
server answers with an HttpOnly, SameSite=Strict cookie that holds an HMAC of the token, never the
token itself, so page URLs and scripts never see it and changing the token ends every session.
Streams and downloads for command-line users also accept ``?token=``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import LOOPBACK_HOSTS

SESSION_COOKIE = "lowdino_session"
bearer = HTTPBearer(auto_error=False, description="LOWDINO_API_TOKEN, when the server has one.")


def tokens_match(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def session_value(token: str) -> str:
    """What the session cookie holds: a keyed hash of the token (a stolen cookie does not reveal it)."""
    return hmac.new(token.encode(), b"lowdino-dashboard-session-v1", hashlib.sha256).hexdigest()


def has_valid_session(request: Request) -> bool:
    expected = request.app.state.settings.api_token
    return bool(expected) and tokens_match(request.cookies.get(SESSION_COOKIE), session_value(expected))


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or wrong API token; send 'Authorization: Bearer <LOWDINO_API_TOKEN>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    expected = request.app.state.settings.api_token
    if not expected or has_valid_session(request):
        return
    if not tokens_match(credentials.credentials if credentials else None, expected):
        raise _unauthorized()


def require_token_or_query(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Header, session cookie or ``?token=`` (for curl users of streams and download links)."""
    expected = request.app.state.settings.api_token
    if not expected or has_valid_session(request):
        return
    candidates = [credentials.credentials if credentials else None, request.query_params.get("token")]
    if not any(tokens_match(candidate, expected) for candidate in candidates):
        raise _unauthorized()


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BodySizeLimit:
    """413 for bodies over `max_bytes`: by Content-Length up front, and by counting chunked bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(send)
                return
        seen = 0
        response_started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer 413 here: the framework would turn an exception while reading the body into
                    # a 400, so whatever the app sends after this is dropped (see limited_send).
                    if not response_started and not rejected:
                        rejected = True
                        await self._reject(send)
                    raise _BodyTooLargeError
            return message

        async def limited_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, limited_send)
        except _BodyTooLargeError:
            if not rejected and not response_started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = (
            b'{"detail":"request body is larger than the server allows (LOWDINO_MAX_BODY_BYTES='
            + str(self.max_bytes).encode()
            + b'); send a smaller body","field_errors":null}'
        )
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass
