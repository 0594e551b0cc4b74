"""The interactive docs load every asset from the service itself (no CDN: works offline)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

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
