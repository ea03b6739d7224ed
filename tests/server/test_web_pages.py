"""The dashboard's server side: page paths, packaged assets, local API docs, login session, field errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.http.app import create_app
from server.http.security import SESSION_COOKIE
from server.http.web import REDOC_REMOTE_LOGO
from server.settings import Settings

TOKEN = "page-token"
EXTERNAL_URL = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")


@pytest.fixture
def secured(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"api_token": TOKEN}))
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


@pytest.mark.parametrize(
    "path", ["/", "/runs", "/runs/abc123", "/launch?kind=eval", "/compare?runs=a,b", "/report/x"]
)
def test_every_page_path_answers_with_the_app(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in response.text
    assert response.headers["cache-control"] == "no-cache"


def test_unknown_paths_and_api_paths_are_not_the_app(client: TestClient) -> None:
    assert client.get("/no-such-page").status_code == 404
    missing = client.get("/api/runs/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"


def test_assets_come_from_packages_on_this_server(client: TestClient) -> None:
    plotly = client.get("/static/vendor/plotly.min.js")
    assert plotly.status_code == 200
    assert plotly.headers["content-type"].startswith("text/javascript")
    assert len(plotly.content) > 1_000_000
    for path in ("/static/css/app.css", "/static/js/pages/run.js", "/static/docs/swagger-ui-bundle.js"):
        assert client.get(path).status_code == 200, path
    for path in ("/", "/login"):
        assert not EXTERNAL_URL.search(client.get(path).text), path


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_only_local_assets(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert not EXTERNAL_URL.search(page.text)
    assert "fonts.googleapis" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_redoc_bundle_points_its_logo_at_this_server(client: TestClient) -> None:
    bundle = client.get("/static/docs/redoc.standalone.js")
    assert bundle.status_code == 200
    assert REDOC_REMOTE_LOGO not in bundle.content
    assert b"/static/docs/favicon.png" in bundle.content


def test_without_a_token_there_is_no_login(client: TestClient) -> None:
    assert client.get("/api/session").json() == {"auth_required": False, "authenticated": True}
    assert client.get("/runs").status_code == 200


def test_with_a_token_pages_ask_for_login_and_keep_the_target(secured: TestClient) -> None:
    response = secured.get("/compare?runs=a,b", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcompare%3Fruns%3Da%2Cb"
    assert secured.get("/docs", follow_redirects=False).status_code == 303
    assert secured.get("/login").status_code == 200
    assert secured.get("/api/runs").status_code == 401


def test_login_sets_an_httponly_strict_cookie_that_rest_and_streams_accept(secured: TestClient) -> None:
    wrong = secured.post("/api/session", json={"token": "nope"})
    assert wrong.status_code == 401
    assert "LOWDINO_API_TOKEN" in wrong.json()["detail"]
    assert SESSION_COOKIE not in secured.cookies

    login = secured.post("/api/session", json={"token": TOKEN})
    assert login.status_code == 204
    header = login.headers["set-cookie"].lower()
    assert "httponly" in header
    assert "samesite=strict" in header
    assert TOKEN not in login.headers["set-cookie"]  # a keyed hash, never the token itself
    assert secured.get("/api/session").json() == {"auth_required": True, "authenticated": True}
    assert secured.get("/api/runs").status_code == 200
    assert secured.get("/runs", follow_redirects=False).status_code == 200
    run = secured.post("/api/runs", json={"kind": "pretrain", "config": {"dataset": "synthetic"}}).json()
    assert secured.get(f"/api/runs/{run['id']}/metrics.csv").status_code == 200

    logout = secured.delete("/api/session")
    assert logout.status_code == 204
    assert secured.get("/api/runs").status_code == 401
    assert secured.get("/runs", follow_redirects=False).status_code == 303


def test_a_session_cookie_for_another_token_is_refused(secured: TestClient, settings: Settings) -> None:
    from server.http.security import session_value

    secured.cookies.set(SESSION_COOKIE, session_value("another-token"))
    assert secured.get("/api/runs").status_code == 401


def test_invalid_config_names_each_field_for_the_form(client: TestClient) -> None:
    response = client.post(
        "/api/runs", json={"kind": "pretrain", "config": {"batch_size": 0, "lr": "fast", "nope": 1}}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["field_errors"]["batch_size"] == "must be >= 1 (got 0)"
    assert body["field_errors"]["lr"].startswith("Input should be a valid number")
    assert "is not an option" in body["field_errors"]["nope"]
    assert "batch_size: must be >= 1" in body["detail"]  # the one line still names everything


def test_a_bad_path_is_reported_at_its_field(client: TestClient) -> None:
    response = client.post(
        "/api/runs", json={"kind": "pretrain", "config": {"dataset": "cifar10", "data_path": "/etc"}}
    )
    assert response.status_code == 409
    assert "outside the allowed directories" in response.json()["field_errors"]["data_path"]


def test_presets_carry_their_purpose(client: TestClient) -> None:
    presets = {preset["name"]: preset for preset in client.get("/api/catalog").json()["presets"]}
    assert presets["quickstart"]["description"].startswith(
        "Quickstart: DINO on the built-in synthetic dataset"
    )
    assert presets["quickstart"]["kind"] == "pretrain"
