"""The HTTP-only routes: the web app, the about page, static files, API docs and Prometheus metrics.

These are presentation and operations, not domain operations, so they are not
RPCs: every domain route stays a proto binding.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

# The web app and its vendored libraries (tools/vendor_web.py), served as they are: no build step.
WEB_DIR = Path(__file__).resolve().parents[1] / "web"

# The app renders model output and documents: only its own scripts may run, and nothing
# it shows may load from elsewhere (a Markdown image must not call out to a tracker).
APP_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Swagger UI and ReDoc style themselves inline; everything else they load is ours. This also keeps
# ReDoc's "API docs by" badge from fetching its logo from a CDN (the badge hides itself instead).
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "content-security-policy": APP_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

# Documented in /openapi.json beside the proto routes: (path, method, operation).
PAGE_OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/",
        "get",
        {
            "operationId": "home",
            "tags": ["Pages"],
            "summary": "The web app",
            "security": [],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
        },
    ),
    (
        "/about",
        "get",
        {
            "operationId": "about",
            "tags": ["Pages"],
            "summary": "About this server: version and links to the API documents",
            "security": [],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
        },
    ),
    (
        "/static/{path}",
        "get",
        {
            "operationId": "static",
            "tags": ["Pages"],
            "summary": "Static files",
            "security": [],
            "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {
                    "description": "The file",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "404": {"description": "No such file"},
            },
        },
    ),
    (
        "/metrics",
        "get",
        {
            "operationId": "metrics",
            "tags": ["Operations"],
            "summary": "Prometheus metrics",
            "security": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        },
    ),
]

# Paths the pages take (no plugin route may start with their first segment).
PAGE_PATHS = ("/", "/about", "/openapi.json", "/docs", "/redoc", "/core-docs", "/metrics", "/static/{path}")

HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/relais.css"></head>
<body><main>
<h1>{title} <small>{version}</small></h1>
<p>Self-hostable AI platform service: one protobuf contract, served over gRPC and as REST, SSE and WebSocket routes.</p>
<ul>
<li><a href="/">Web app</a></li>
<li><a href="/docs">API explorer</a> (Swagger UI)</li>
<li><a href="/redoc">API reference</a> (ReDoc) · <a href="/core-docs">core docs</a></li>
<li><a href="/openapi.json">OpenAPI document</a></li>
<li><a href="/health">Health</a> · <a href="/metrics">Metrics</a></li>
</ul>
<p>{count} HTTP routes derived from the contract.</p>
</main></body></html>
"""


SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — API explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/vendor/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script>
</body></html>
"""

REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/icon.svg">
<link rel="stylesheet" href="/static/vendor/fonts/fonts.css">
<link rel="stylesheet" href="/static/docs/redoc.css"></head>
<body><redoc spec-url="/openapi.json" disable-telemetry="true"></redoc>
<script type="module" src="/static/vendor/redoc/redoc.standalone.js"></script>
</body></html>
"""


def install_pages(
    app: FastAPI, *, openapi_json: Callable[[], bytes], title: str, version: str, route_count: int
) -> None:
    """The pages; `openapi_json` gives the document as it is now (plugins change it)."""
    about = HOME.format(title=html.escape(title), version=html.escape(version), count=route_count)
    swagger_page = SWAGGER.format(title=html.escape(title))
    redoc_page = REDOC.format(title=html.escape(title))
    app_page = (WEB_DIR / "index.html").read_bytes()

    async def home_page(request: Request) -> Response:
        return Response(app_page, media_type="text/html", headers={**PAGE_HEADERS, "cache-control": "no-cache"})

    async def about_page(request: Request) -> HTMLResponse:
        return HTMLResponse(about)

    async def openapi(request: Request) -> Response:
        return Response(openapi_json(), media_type="application/json")

    async def swagger(request: Request) -> HTMLResponse:
        return HTMLResponse(swagger_page, headers={"content-security-policy": DOCS_CSP})

    async def redoc(request: Request) -> HTMLResponse:
        return HTMLResponse(redoc_page, headers={"content-security-policy": DOCS_CSP})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for path, endpoint in (
        ("/", home_page),
        ("/about", about_page),
        ("/openapi.json", openapi),
        ("/docs", swagger),
        ("/redoc", redoc),
        ("/core-docs", redoc),
        ("/metrics", metrics),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
