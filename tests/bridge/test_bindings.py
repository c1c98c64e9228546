"""The route table is compiled from descriptors and refuses inconsistent bindings."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from bridge.bindings import compile_bindings, compile_websockets, contract_services
from bridge.framings import FramingMismatch, SseFraming
from bridge.httprule import TemplateError

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"


def service_from(
    source_http: str,
    behavior: str = "",
    body_fields: str = "string name = 1; int32 n = 2;",
    *,
    streaming: bool = False,
    client_streaming: bool = False,
) -> ServiceDescriptor:
    """Compile a one-method service from proto text into a private pool."""
    text = f"""
syntax = "proto3";
package bad.v1;
import "google/api/annotations.proto";
import "relais/options/v1/options.proto";
message Req {{ {body_fields} }}
message Resp {{}}
service BadService {{
  rpc Do({"stream " if client_streaming else ""}Req) returns ({"stream " if streaming else ""}Resp) {{
    option (google.api.http) = {{ {source_http} }};
    {behavior}
  }}
}}
"""
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "bad.proto").write_text(text)
        out = Path(scratch) / "set.binpb"
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{scratch}",
                f"-I{PROTO_ROOT}",
                f"-I{well_known}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                "bad.proto",
            ],
            check=True,
        )
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool.FindServiceByName("bad.v1.BadService")


def test_the_contract_compiles_and_every_route_is_unique() -> None:
    bindings = compile_bindings(contract_services())

    routes = {(b.http_method, b.template.source) for b in bindings}
    assert ("GET", "/health") in routes and ("GET", "/manager/health") in routes
    assert len(routes) == len(bindings)


@pytest.mark.parametrize(
    "rule, behavior, message",
    [
        ('get: "/x/{missing}"', "", "no field 'missing'"),
        ('post: "/x" body: "nope"', "", "body field 'nope'"),
        ('get: "/x" response_body: "nope"', "", "response_body 'nope'"),
        ('get: "/x" body: "*"', "", "GET bindings take no body"),
        ('get: "/x" additional_bindings { get: "/x" }', "", "is bound by"),
        ('get: "/x"', 'option (relais.options.v1.http) = {bindings {method: "GET" path: "/y"}};', "unknown bindings"),
    ],
)
def test_inconsistent_binding_fails_at_start_up(rule: str, behavior: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        compile_bindings([service_from(rule, behavior)])


SSE = "option (relais.options.v1.stream) = {sse: STREAM_DIALECT_SSE};"
WS = 'option (relais.options.v1.stream) = {websockets {path: "/ws" dialect: STREAM_DIALECT_LOCAL_ASSISTANT_WS}};'
SSE_AND_WS = (
    "option (relais.options.v1.stream) = {sse: STREAM_DIALECT_SSE "
    'websockets {path: "/ws" dialect: STREAM_DIALECT_LOCAL_ASSISTANT_WS}};'
)


def test_a_streaming_rpc_is_bound_with_its_framing() -> None:
    [binding] = compile_bindings([service_from('post: "/x" body: "*"', SSE, streaming=True)])
    assert binding.streaming and binding.stream_dialect == 1
    # The WebSocket framings read the event family, relais.v1.StreamEvent: another message is refused.
    with pytest.raises(TemplateError, match=r"frames relais\.v1\.StreamEvent, not bad\.v1"):
        compile_websockets([service_from('post: "/x" body: "*"', SSE_AND_WS, streaming=True)])
    [socket] = [s for s in compile_websockets(contract_services()) if s.path == "/llm/stream"]
    assert socket.full_method == "/relais.v1.InferenceService/GenerateStream"


@pytest.mark.parametrize(
    "behavior, streaming, message",
    [
        ("", True, "server-streaming RPC needs"),
        (SSE, False, "stream framing on a unary RPC"),
        ("option (relais.options.v1.stream) = {sse: STREAM_DIALECT_LOCAL_ASSISTANT_WS};", True, "no sse framing"),
    ],
)
def test_stream_framing_must_fit_the_rpc(behavior: str, streaming: bool, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        compile_bindings([service_from('post: "/x" body: "*"', behavior, streaming=streaming)])


def test_websockets_serve_only_server_streams_in_a_websocket_dialect() -> None:
    with pytest.raises(TemplateError, match="only server-streaming"):
        compile_websockets([service_from('post: "/x" body: "*"', WS)])
    bad_dialect = 'option (relais.options.v1.stream) = {websockets {path: "/ws" dialect: STREAM_DIALECT_SSE}};'
    with pytest.raises(TemplateError, match="no websocket framing"):
        compile_websockets([service_from('post: "/x" body: "*"', bad_dialect, streaming=True)])


def test_the_live_routes_are_framings_of_the_live_rpcs() -> None:
    sockets = {socket.path: socket for socket in compile_websockets(contract_services())}
    assert sockets["/ws/socket.io"].full_method == "/relais.v1.LiveService/WatchChat"
    assert sockets["/ws"].full_method == "/relais.v1.EventService/Subscribe"


@pytest.mark.parametrize(
    "dialect, message",
    [
        ("STREAM_DIALECT_SOCKETIO_ROOMS", r"frames relais\.v1\.WatchChatResponse, not bad\.v1\.Resp"),
        ("STREAM_DIALECT_XCORE_EVENTS", r"needs fields \['data', 'event', 'ts'\] of bad\.v1\.Resp"),
    ],
)
def test_a_live_framing_refuses_an_rpc_that_does_not_fit(dialect: str, message: str) -> None:
    behavior = f'option (relais.options.v1.stream) = {{websockets {{path: "/live" dialect: {dialect}}}}};'
    with pytest.raises(TemplateError, match=message):
        compile_websockets([service_from('post: "/x" body: "*"', behavior, streaming=True)])


class _Needy(SseFraming):
    """A framing that reads any message, but frames a `token` member and calls SetTyping."""

    dialect = 0
    family = None
    needs = frozenset({"token"})

    def frame(self, event: Message) -> bytes | None:
        return None

    def openapi(self, builder: Any, binding: Any) -> dict[str, Any]:
        return {}


def test_a_framing_refuses_a_message_without_the_members_fields_and_companions_it_needs() -> None:
    method = service_from('post: "/x" body: "*"', SSE, streaming=True).methods_by_name["Do"]
    with pytest.raises(FramingMismatch, match=r"needs oneof members \['token'\]"):
        _Needy().check(method)
    needy_fields = type("NeedyFields", (_Needy,), {"needs": frozenset(), "request_fields": frozenset({"chat_id"})})
    with pytest.raises(FramingMismatch, match=r"sets request fields \['chat_id'\]"):
        needy_fields().check(method)
    caller = type("Caller", (_Needy,), {"needs": frozenset(), "companions": frozenset({"SetTyping"})})
    with pytest.raises(FramingMismatch, match=r"also calls \['SetTyping'\] of the same service"):
        caller().check(method)
    type("Content", (_Needy,), {"needs": frozenset(), "request_fields": frozenset({"name"})})().check(method)


def test_a_usage_field_must_be_a_bool_of_the_request() -> None:
    behavior = 'option (relais.options.v1.stream) = {sse: STREAM_DIALECT_SSE usage_field: "name"};'
    with pytest.raises(TemplateError, match="usage_field 'name' is not a bool"):
        compile_bindings([service_from('post: "/x" body: "*"', behavior, streaming=True)])
    fine = 'option (relais.options.v1.stream) = {sse: STREAM_DIALECT_SSE usage_field: "flag"};'
    [binding] = compile_bindings([service_from('post: "/x" body: "*"', fine, "bool flag = 1;", streaming=True)])
    assert binding.usage_field == "flag"


def test_the_error_format_is_the_methods_unless_a_binding_names_its_own() -> None:
    rule = 'get: "/x" additional_bindings { get: "/y" }'
    whole = "option (relais.options.v1.http) = {error_format: ERROR_FORMAT_OPENAI};"
    one = 'option (relais.options.v1.http) = {bindings {method: "GET" path: "/y" error_format: ERROR_FORMAT_OPENAI}};'

    every = {b.template.source: b.error_format for b in compile_bindings([service_from(rule, whole)])}
    only_y = {b.template.source: b.error_format for b in compile_bindings([service_from(rule, one)])}

    assert every == {"/x": 1, "/y": 1} and only_y == {"/x": 0, "/y": 1}
