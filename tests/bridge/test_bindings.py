"""The route table is compiled from descriptors and refuses inconsistent bindings."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

from bridge.bindings import compile_bindings, compile_websockets, contract_services
from bridge.httprule import TemplateError

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"


def service_from(
    source_http: str,
    behavior: str = "",
    body_fields: str = "string name = 1; int32 n = 2;",
    *,
    streaming: bool = False,
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
  rpc Do(Req) returns ({"stream " if streaming else ""}Resp) {{
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
    [socket] = compile_websockets([service_from('post: "/x" body: "*"', SSE_AND_WS, streaming=True)])
    assert socket.path == "/ws" and socket.full_method == "/bad.v1.BadService/Do"


@pytest.mark.parametrize(
    "behavior, streaming, message",
    [
        ("", True, "server-streaming RPC needs"),
        (SSE, False, "stream framing on a unary RPC"),
        ("option (relais.options.v1.stream) = {sse: STREAM_DIALECT_LOCAL_ASSISTANT_WS};", True, "needs"),
    ],
)
def test_stream_framing_must_fit_the_rpc(behavior: str, streaming: bool, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        compile_bindings([service_from('post: "/x" body: "*"', behavior, streaming=streaming)])


def test_websockets_serve_only_server_streams_in_a_websocket_dialect() -> None:
    with pytest.raises(TemplateError, match="only server-streaming"):
        compile_websockets([service_from('post: "/x" body: "*"', WS)])
    bad_dialect = 'option (relais.options.v1.stream) = {websockets {path: "/ws" dialect: STREAM_DIALECT_SSE}};'
    with pytest.raises(TemplateError, match="not a WebSocket dialect"):
        compile_websockets([service_from('post: "/x" body: "*"', bad_dialect, streaming=True)])
