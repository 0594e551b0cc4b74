"""The interactive docs load every asset from the service itself (no CDN: works offline), and
every endpoint README.md and docs/ name is one the service serves."""

from __future__ import annotations

import functools
import re
import subprocess
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


def _load_rows(text: str) -> dict[str, dict[str, str]]:
    """Phase -> column -> cell of a stored load table (``benchmarks/results/load-latency*.md``)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    head = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]
    return {row[0]: dict(zip(head, row, strict=True)) for row in rows if row[0] != head[0]}


def _as_written(doc: str, stored: float) -> bool:
    """Whether ``doc`` (``27``, ``46.3``, ``0.98``) is ``stored`` rounded as the page rounds it."""
    decimals = len(doc.partition(".")[2])
    return abs(float(doc) - stored) <= 0.5 * 10**-decimals + 1e-9


#: a figure of api.md's load table: its pattern, the stored column and the scale between them
_LOAD_FIGURES = [
    (r"([\d.]+) req/s", "throughput_rps", 1.0),
    (r"p50 ([\d.]+) ms", "p50_ms", 1.0),
    (r"p99 ([\d.]+) ms", "p99_ms", 1.0),
    (r"p50 ([\d.]+) s\b", "p50_ms", 1e-3),
]


def test_the_load_table_is_the_stored_runs_at_the_commit_it_names() -> None:
    """api.md's 1- and 2-process table named ``git show 6be686f:<file>``, whose
    ``load-latency-2workers.md`` holds another run (697.1 req/s, p99 49.0 ms, where the table
    gives 714.2 and 46.3): every figure of the table is the stored files' at the commit named."""
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    named = re.search(r"`git show (\w+):<file>`", text)
    assert named is not None, "api.md names the commit of its load table"
    stored: dict[str, dict[str, dict[str, str]]] = {}
    for column, name in (
        ("1 process", "load-latency.md"),
        ("2 processes", "load-latency-2workers.md"),
    ):
        shown = subprocess.run(
            ["git", "show", f"{named.group(1)}:benchmarks/results/{name}"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if shown.returncode != 0:
            pytest.skip(f"no git history holding {named.group(1)} here (a shallow clone?)")
        stored[column] = _load_rows(shown.stdout)
    table = text[text.index("| phase (20 clients) | 1 process | 2 processes |") :]
    checked = 0
    for row in _load_rows(table[: table.index("\n\n")]).values():
        phase = row["phase (20 clients)"]
        for column, runs in stored.items():
            if row[column] == "(not run)":
                continue
            run = next(runs[p] for p in runs if _same_phase(phase, p))
            for pattern, field, scale in _LOAD_FIGURES:
                for figure in re.findall(pattern, row[column]):
                    value = float(run[field]) * scale
                    assert _as_written(figure, value), f"{phase}, {column}: {figure}, {value}"
                    checked += 1
    assert checked >= 25


def _same_phase(doc: str, stored: str) -> bool:
    """Whether the table's phase (``allocations, explanations, closed loop, cold start``) is
    the stored one (``allocations, 1 order, explanations, closed loop, cold start (new ...)``)."""
    if doc.startswith("routes"):
        return stored.startswith("routes")
    words = stored.replace("1 order, ", "").split(" (")[0]
    return words == doc
