"""The interactive docs load every asset from the service itself (no CDN: works offline), and
every endpoint README.md and docs/ name is one the service serves."""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO

#: what each kind of asset must be served as
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _AssetUrls(HTMLParser):
    """Collects the src of <script> and the href of <link> tags."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.urls.append(value)


def _asset_urls(html: str) -> list[str]:
    parser = _AssetUrls()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_the_service(client: TestClient, page: str) -> None:
    answer = client.get(page)  # open, as before: no X-API-Key
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "http://" not in html and "https://" not in html  # no CDN, no web fonts
    urls = _asset_urls(html)
    assert any(url.endswith(".js") for url in urls)
    for url in urls:
        assert url.startswith("/static/docs/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert ASSET_TYPES[suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 0


def test_swagger_ui_page_points_at_the_local_css_and_the_openapi_document(
    client: TestClient,
) -> None:
    urls = _asset_urls(client.get("/docs").text)
    assert "/static/docs/swagger-ui-bundle.js" in urls
    assert "/static/docs/swagger-ui.css" in urls
    assert "'/openapi.json'" in client.get("/docs").text


def test_swagger_ui_oauth2_redirect_page_is_still_served(client: TestClient) -> None:
    answer = client.get("/docs/oauth2-redirect")
    assert answer.status_code == 200
    assert "oauth2" in answer.text


def test_docs_assets_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc", "/static"))]


#: ``POST /v1/plans/{id}/reoptimise``: an endpoint named with its method
_METHOD_PATH = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[\w/{}$.-]*[\w}])")
#: `` `/v1/whatif` ``: a path of the service in inline code (any method)
_CODE_PATH = re.compile(r"`(/(?:v1|healthz|readyz|metrics)\b[\w/{}$.-]*)`")
#: a curl line's URL on the loopback (``http://127.0.0.1:8000/v1/routes``)
_CURL_URL = re.compile(r"http://127\.0\.0\.1:\d+(/[\w/{}$.-]*[\w}])")


def _named_endpoints() -> list[tuple[str, str | None, str]]:
    """(page:line, method or None for any, path) of every endpoint README and docs/ name:
    ``METHOD /path`` in the text, a ``/path`` in inline code, the URL of a ``curl`` line."""
    found: list[tuple[str, str | None, str]] = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")

        def where(at: int, page: Path = page, text: str = text) -> str:
            return f"{page.name}:{text.count(chr(10), 0, at) + 1}"

        found += [(where(m.start()), m.group(1), m.group(2)) for m in _METHOD_PATH.finditer(text)]
        found += [(where(m.start()), None, m.group(1)) for m in _CODE_PATH.finditer(text)]
        for curl in re.finditer(r"^(?:\w+=\$\()?curl .*?(?:\n(?!\s)|\Z)", text, flags=re.M | re.S):
            command = curl.group(0)
            url = _CURL_URL.search(command)
            assert url is not None, f"{where(curl.start())}: a curl line without a loopback URL"
            verb = re.search(r"-X (\w+)", command)
            method = verb.group(1) if verb else ("POST" if re.search(r"\s-d\s", command) else "GET")
            found.append((where(curl.start()), method, url.group(1)))
    return found


NAMED_ENDPOINTS = _named_endpoints()


@functools.cache
def _routes() -> list[Any]:
    """The routes of the service's app as ``--demo`` builds it (built, not started)."""
    from api.core.config import get_settings
    from api.main import create_app

    return list(create_app(get_settings().model_copy(update={"demo": True})).router.routes)


def test_the_pages_name_endpoints_and_curl_them() -> None:
    assert len(NAMED_ENDPOINTS) >= 80
    curled = {("GET", "/v1/jobs/$JOB"), ("DELETE", "/v1/jobs/$JOB"), ("POST", "/v1/routes")}
    assert curled <= {(method, path) for _, method, path in NAMED_ENDPOINTS}  # api.md's curl lines


@pytest.mark.parametrize(
    ("where", "method", "path"), NAMED_ENDPOINTS, ids=[f"{w} {p}" for w, _, p in NAMED_ENDPOINTS]
)
def test_every_endpoint_the_docs_name_is_served(where: str, method: str | None, path: str) -> None:
    """docs/simulation.md named ``/v1/policies``, which is no endpoint (the one route under it
    is ``POST /v1/policies/evaluate``): each path named (``{id}``, ``$JOB``, ``OLD_ID`` and the
    like standing for any value) is a route of the app, with the method named (any method when
    none is), as the app's own router matches a request."""
    from starlette.routing import Match

    concrete = re.sub(r"\{[^}]*\}|\$\w+", "x", path)
    matches = {
        route.matches({"type": "http", "method": verb, "path": concrete, "root_path": ""})[0]
        for verb in ([method] if method else ["GET", "POST", "DELETE"])
        for route in _routes()
    }
    assert Match.FULL in matches, f"{where}: {method or 'any method'} {path} is no route"
