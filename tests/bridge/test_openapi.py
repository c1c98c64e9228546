"""/openapi.json comes from the descriptors: every route, with request and response schemas."""

from __future__ import annotations

import httpx
from relais.options.v1 import options_pb2

from bridge.bindings import compile_bindings, compile_websockets, contract_services


def test_every_binding_is_documented_with_schemas(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    paths = document["paths"]

    for binding in compile_bindings(contract_services()):
        operation = paths[binding.template.openapi_path()][binding.http_method.lower()]
        success = operation["responses"][str(binding.success_status)]
        if binding.success_status == 204:
            assert "content" not in success
        elif binding.method.output_type.full_name == "google.api.HttpBody":
            assert success["content"]["*/*"]["schema"] == {"type": "string", "format": "binary"}
        elif binding.streaming:
            # Each framing documents its own frames: a JSON `data:` line beside `data: [DONE]`.
            event = success["content"]["text/event-stream"]["schema"]["oneOf"][1]
            assert "contentSchema" in event["properties"]["data"]
        else:
            assert "schema" in success["content"]["application/json"]
        error = "OpenAIError" if binding.error_format == options_pb2.ERROR_FORMAT_OPENAI else "Error"
        assert operation["responses"]["default"] == {"$ref": f"#/components/responses/{error}"}
        assert operation["summary"]
    openai = document["components"]["schemas"]["OpenAIErrorBody"]
    assert openai["required"] == ["error"] and "param" in openai["properties"]["error"]["properties"]


def test_health_schema_follows_the_json_conventions(http: httpx.Client) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    health = schemas["relais.v1.GetHealthResponse"]["properties"]

    assert health["uptime"]["type"] == "integer" and health["uptime"]["format"] == "int64"
    assert {"type": "string", "enum": ["healthy", "degraded", "unhealthy", "draining"]} in health["status"]["anyOf"]
    assert health["timestamp"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert "measured" in health["timestamp"]["description"].lower() or health["timestamp"]["description"]
    assert schemas["relais.v1.HealthChecks"]["properties"]["redis"]["type"] == "boolean"
    assert schemas["relais.v1.GetHealthResponse"]["properties"]["vector_store"]["anyOf"][1] == {"type": "null"}


def test_request_mapping_is_documented(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]

    get_item = paths["/v1/items/{item_id}"]["get"]
    create = paths["/v1/shelves/{shelf}/items"]["post"]
    names = {p["name"]: p["in"] for p in get_item["parameters"]}
    assert names["item_id"] == "path" and names["page_size"] == "query" and names["filter.q"] == "query"
    assert "shelf" not in [p["name"] for p in create["parameters"] if p["in"] == "query"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]["$ref"].endswith(
        "relaistest.v1.Item"
    )
    assert "201" in create["responses"]
    assert "/v1/shelves/{shelf}/items/{item_id}" in paths  # additional binding
    # PUT /v1/items/{item.id} and GET /v1/items/{item_id} match the same URLs: one OpenAPI path.
    assert set(paths["/v1/items/{item_id}"]) == {"get", "put", "delete"}
    put_parameter = paths["/v1/items/{item_id}"]["put"]["parameters"][0]
    assert put_parameter["name"] == "item_id" and "item.id" in put_parameter["description"]
    wrapped = paths["/v1/wrapped/sessions"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert wrapped["properties"]["status"] == {"const": "success"}
    assert paths["/health"]["get"]["security"] == [] and paths["/v1/whoami"]["get"]["security"]


def test_docs_pages_render_the_document(http: httpx.Client) -> None:
    for page in ("/docs", "/redoc", "/core-docs"):
        response = http.get(page)
        assert response.status_code == 200 and "/openapi.json" in response.text


def test_static_files_are_served_and_traversal_is_refused(http: httpx.Client) -> None:
    assert http.get("/static/relais.css").headers["content-type"].startswith("text/css")
    assert http.get("/static/../../pyproject.toml").status_code == 404
    assert http.get("/static/%2e%2e/app.py").status_code == 404


def test_uploads_are_documented_as_multipart_forms(http: httpx.Client) -> None:
    operation = http.get("/openapi.json").json()["paths"]["/api/documents/upload"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]

    assert form["properties"]["file"] == {"type": "string", "format": "binary"} and form["required"] == ["file"]
    assert {"entity_type", "entity_id", "conversation_id"} <= set(form["properties"])
    assert "application/json" in operation["requestBody"]["content"]


def test_every_websocket_route_documents_its_frames(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]

    for socket in compile_websockets(contract_services()):
        operation = paths[socket.path].get("get") or paths[socket.path]["x-websocket"]
        assert operation["x-websocket"] is True and {"in", "out"} <= set(operation["x-frames"]), socket.path
        assert operation["description"]
    rooms = paths["/ws/socket.io"]["get"]["x-frames"]
    assert [event["properties"]["event"]["const"] for event in rooms["in"]["oneOf"]] == [
        "join_chat",
        "leave_chat",
        "typing",
    ]
    assert [event["properties"]["event"]["const"] for event in rooms["out"]["oneOf"]] == ["new_message", "user_typing"]
    assert paths["/ws"]["get"]["x-frames"]["out"]["required"] == ["event", "data", "ts"]
