"""Compile the test-only protos (tests/proto) once per session and import them."""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
TEST_PROTOS = ROOT / "tests" / "proto"
_OUT = Path(tempfile.mkdtemp(prefix="relais-testproto-"))


def load() -> tuple[ModuleType, ModuleType]:
    """(transcoding_pb2, transcoding_pb2_grpc) for relaistest.v1."""
    if "relaistest.v1.transcoding_pb2" not in sys.modules:
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        status = protoc.main(
            [
                "protoc",
                f"-I{TEST_PROTOS}",
                f"-I{ROOT / 'proto'}",
                f"-I{well_known}",
                f"--python_out={_OUT}",
                f"--grpc_python_out={_OUT}",
                "relaistest/v1/transcoding.proto",
            ]
        )
        if status != 0:
            raise RuntimeError("cannot compile tests/proto")
        for package in (_OUT / "relaistest", _OUT / "relaistest" / "v1"):
            (package / "__init__.py").touch()
        sys.path.insert(0, str(_OUT))
    return (
        importlib.import_module("relaistest.v1.transcoding_pb2"),
        importlib.import_module("relaistest.v1.transcoding_pb2_grpc"),
    )
