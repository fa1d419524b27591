"""API docs served offline: Swagger UI and ReDoc with their assets from a Python package (no CDN, no web
fonts), so an installation without internet, or in mainland China, still has its API documentation."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
STATIC = Path(fastapi_offline.__file__).parent / "static"
# the packaged ReDoc build still draws its sidebar logo from a CDN at run time: point it here instead
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
router = APIRouter(include_in_schema=False)


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=str(STATIC)), name="docs-assets")


@cache
def _redoc_js() -> bytes:
    return (STATIC / "redoc.standalone.js").read_bytes().replace(REDOC_CDN_LOGO.encode(),
                                                                 f"{ASSETS}/favicon.png".encode())


@router.get("/docs-offline/redoc.js")
def redoc_js() -> Response:
    return Response(_redoc_js(), media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})


@router.get("/docs", response_class=HTMLResponse)
def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=request.app.openapi_url or "/openapi.json",
                               title=f"{request.app.title} API", swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{ASSETS}/swagger-ui.css", swagger_favicon_url=f"{ASSETS}/favicon.png",
                               oauth2_redirect_url="/docs/oauth2-redirect",
                               swagger_ui_parameters={"validatorUrl": None})  # no badge from validator.swagger.io


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=request.app.openapi_url or "/openapi.json", title=f"{request.app.title} API",
                          redoc_js_url="/docs-offline/redoc.js", redoc_favicon_url=f"{ASSETS}/favicon.png",
                          with_google_fonts=False)
