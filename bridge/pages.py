"""The HTTP-only routes: home page, static files, API docs and Prometheus metrics.

These are presentation and operations, not domain operations, so they are not
RPCs: every domain route stays a proto binding.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

# Documented in /openapi.json beside the proto routes: (path, method, operation).
PAGE_OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "/",
        "get",
        {
            "operationId": "home",
            "tags": ["Pages"],
            "summary": "Home page",
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

HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/relais.css"></head>
<body><main>
<h1>{title} <small>{version}</small></h1>
<p>Self-hostable AI platform service: one protobuf contract, served over gRPC and as REST, SSE and WebSocket routes.</p>
<ul>
<li><a href="/docs">API explorer</a> (Swagger UI)</li>
<li><a href="/redoc">API reference</a> (ReDoc) · <a href="/core-docs">core docs</a></li>
<li><a href="/openapi.json">OpenAPI document</a></li>
<li><a href="/health">Health</a> · <a href="/metrics">Metrics</a></li>
</ul>
<p>{count} HTTP routes derived from the contract.</p>
</main></body></html>
"""


def install_pages(app: FastAPI, *, openapi_json: bytes, title: str, version: str, route_count: int) -> None:
    home = HOME.format(title=html.escape(title), version=html.escape(version), count=route_count)

    async def home_page(request: Request) -> HTMLResponse:
        return HTMLResponse(home)

    async def openapi(request: Request) -> Response:
        return Response(openapi_json, media_type="application/json")

    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} — API explorer")

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{title} — API reference")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for path, endpoint in (
        ("/", home_page),
        ("/openapi.json", openapi),
        ("/docs", swagger),
        ("/redoc", redoc),
        ("/core-docs", redoc),
        ("/metrics", metrics),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
