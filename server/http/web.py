"""The browser side of the server: dashboard pages, their static files, and local API docs.

Every page path (`/`, `/runs`, `/runs/<id>`, `/launch`, `/compare`, `/sweeps[/<id>]`, `/searches[/<id>]`, `/report/...`) answers with the
same app shell; the ES modules under /static pick the page from the path, so a reload or a shared
link shows the same view. Nothing is loaded from another origin: Plotly.js comes from the pinned
`plotly` package, Swagger UI and ReDoc from the pinned `fastapi-offline` package.
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from server.http.security import has_valid_session

PAGE_PATHS = (
    "/",
    "/runs",
    "/runs/{run_id}",
    "/launch",
    "/compare",
    "/sweeps",
    "/sweeps/{sweep_id}",
    "/searches",
    "/searches/{search_id}",
    "/report",
    "/report/{selection}",
)
NO_STORE = {"Cache-Control": "no-cache"}
# The docs pages' bundles hard-code a few outside URLs (ReDoc's sidebar logo comes from cdn.redoc.ly):
# a policy of own-origin-only makes the browser drop those requests before they leave the machine.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def frontend_dir() -> Path:
    """The installed `frontend` package's static folder (a source checkout and a wheel alike)."""
    import frontend

    return Path(frontend.__file__).resolve().parent / "static"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def docs_assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


REDOC_REMOTE_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def redoc_js() -> bytes:
    """ReDoc's bundle with its sidebar logo pointed at our own favicon.

    The bundle always renders an <img> from cdn.redoc.ly (no option turns it off); offline it is a
    broken image, online it tells a third party who reads these docs.
    """
    bundle = (docs_assets_dir() / "redoc.standalone.js").read_bytes()
    return bundle.replace(REDOC_REMOTE_LOGO, b"/static/docs/favicon.png")


def _needs_login(request: Request) -> bool:
    return bool(request.app.state.settings.api_token) and not has_valid_session(request)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _page_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    shell = frontend_dir() / "index.html"
    login = frontend_dir() / "login.html"

    async def page(request: Request) -> Response:
        if _needs_login(request):
            return _login_redirect(request)
        return FileResponse(shell, headers=NO_STORE)

    for path in PAGE_PATHS:
        router.add_api_route(path, page, methods=["GET"])

    @router.get("/login")
    async def login_page() -> Response:
        return FileResponse(login, headers=NO_STORE)

    @router.get("/static/vendor/plotly.min.js")
    async def plotly_bundle() -> Response:
        # Versioned by the pinned package: a new plotly gives a new ETag, so caching is safe.
        return FileResponse(plotly_js(), media_type="text/javascript")

    @router.get("/static/docs/redoc.standalone.js")
    async def redoc_bundle() -> Response:
        return Response(redoc_js(), media_type="text/javascript")

    @router.get("/docs")
    async def swagger(request: Request) -> Response:
        if _needs_login(request):
            return _login_redirect(request)
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="LowDINO API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
            # The default validator badge calls validator.swagger.io with the schema's URL.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        if _needs_login(request):
            return _login_redirect(request)  # type: ignore[return-value]
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title="LowDINO API",
            redoc_js_url="/static/docs/redoc.standalone.js",
            redoc_favicon_url="/static/docs/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    return router


def mount_frontend(app: FastAPI) -> None:
    """Pages, static assets and docs; called after the API routes so that /api always wins."""
    app.include_router(_page_router())
    app.mount("/static/docs", StaticFiles(directory=docs_assets_dir()), name="docs-assets")
    app.mount("/static", StaticFiles(directory=frontend_dir()), name="frontend")
