"""/api/session: the dashboard's login. The token is exchanged once for an HttpOnly session cookie."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from server.http.security import SESSION_COOKIE, has_valid_session, session_value, tokens_match

router = APIRouter(prefix="/session", tags=["session"])
SESSION_MAX_AGE_S = 30 * 24 * 3600


class SessionLogin(BaseModel):
    token: str = Field(min_length=1, max_length=4096, description="The server's LOWDINO_API_TOKEN.")


class SessionPublic(BaseModel):
    auth_required: bool = Field(description="True when the server has LOWDINO_API_TOKEN set.")
    authenticated: bool = Field(description="True when this request carries a valid session cookie.")


@router.get("", response_model=SessionPublic)
def get_session(request: Request) -> SessionPublic:
    required = bool(request.app.state.settings.api_token)
    return SessionPublic(auth_required=required, authenticated=not required or has_valid_session(request))


@router.post(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={401: {"description": "Wrong token."}},
)
def login(body: SessionLogin, request: Request) -> Response:
    """Check the token and set the session cookie (HttpOnly, SameSite=Strict)."""
    expected = request.app.state.settings.api_token
    if not expected:
        return Response(status_code=status.HTTP_204_NO_CONTENT)  # nothing to log in to
    if not tokens_match(body.token, expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="wrong token; use the value of LOWDINO_API_TOKEN that the server was started with",
        )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(expected),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout() -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
