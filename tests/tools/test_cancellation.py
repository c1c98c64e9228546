"""A client that leaves cancels the running tool: an external MCP tool is told (it leaves a
marker), an execute_command program is killed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from relais.v1 import tool_pb2, tool_pb2_grpc

from tests.identity.helpers import Account
from tests.support.live import LiveStack
from tests.tools.support import tool_names, wait_for


def _start_call(stack: LiveStack, account: Account, tool: str, arguments: dict[str, object]) -> grpc.Future:
    channel = grpc.insecure_channel(stack.grpc_target)
    stub = tool_pb2_grpc.ToolServiceStub(channel)
    message = struct_pb2.Struct()
    message.update(arguments)
    metadata = [("authorization", f"Bearer {account.tokens['access_token']}")]
    return stub.CallTool.future(tool_pb2.CallToolRequest(name=tool, arguments=message), metadata=metadata)


def test_cancelled_call_cancels_the_external_tool(
    http: object, tools_stack: LiveStack, user: Account, markers: Path
) -> None:
    wait_for(lambda: "slow" in tool_names(http, user), what="ext tools")  # type: ignore[arg-type]
    call = _start_call(tools_stack, user, "slow", {"seconds": 4.5, "tag": "rpc"})
    time.sleep(0.8)
    call.cancel()
    wait_for(lambda: (markers / "cancelled-rpc").exists(), timeout=5, what="the tool's cancellation marker")


def test_cancelled_call_kills_the_command(tools_stack: LiveStack, root: Account) -> None:
    call = _start_call(tools_stack, root, "execute_command", {"program": "sleep", "args": ["9.87654"]})
    wait_for(lambda: _running("sleep 9.87654"), timeout=5, what="the program to start")
    call.cancel()
    with pytest.raises(grpc.FutureCancelledError):
        call.result()
    wait_for(
        lambda: not _running("sleep 9.87654"), timeout=1.0, what="the program to be killed (before the 2 s time limit)"
    )


def _running(command: str) -> bool:
    return subprocess.run(["pgrep", "-f", command], capture_output=True, check=False).returncode == 0
