"""The interactive docs (Swagger UI at /docs, ReDoc at /redoc) served without a CDN.

FastAPI's default pages load their JavaScript and CSS from a CDN, so on a machine without
internet they stay blank. The same files ship in the ``fastapi-offline`` package (Swagger
UI 5, ReDoc 2, MIT); they are mounted under ``/static/docs`` and the pages point there.
Open like FastAPI's own pages: no key needed.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static/docs"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def docs_assets_dir() -> Path:
    """The installed folder with swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc with their assets from the installed package (app built with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC_URL, StaticFiles(directory=docs_assets_dir()), name="docs-static")
    title = app.title

    def _root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI over /openapi.json."""
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + str(app.openapi_url),
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        """Swagger UI's OAuth2 redirect page (as FastAPI serves it)."""
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc over /openapi.json (system fonts: Google Fonts is a CDN too)."""
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + str(app.openapi_url),
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
