"""llama.cpp on CPUs with AMX: load the weights into plain CPU buffers.

llama.cpp places weights in "extra buffer types" where the CPU offers them (AMX tiles,
repacked layouts). Its AMX matrix multiplication crashes the process (SIGSEGV in
`ggml_backend_amx_mul_mat`) as soon as the packaged Gemma 3 270M generates, with
llama-cpp-python 0.3.35 and 0.3.36 built natively on an AMX CPU (seen on this project's
Sapphire Rapids-class machines; CPUs without AMX are unaffected). llama-cpp-python takes no
argument for `llama_model_params.use_extra_bufts`, so on such CPUs the default model
parameters every `Llama` starts from are made with the flag off. The cost is the repacked
layouts' speed-up on those CPUs only; a crash is not an option.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import llama_cpp.llama_cpp as bindings

log = logging.getLogger("relais.inference.local")

AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@functools.cache
def avoid_amx_buffers() -> bool:
    """Idempotent: on an AMX CPU, make llama.cpp's default model parameters skip extra
    buffer types. Returns whether it did."""
    if not AMX_FLAGS & cpu_flags():
        return False
    defaults = bindings.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    log.info("AMX CPU: llama.cpp weights kept in plain CPU buffers (its AMX kernels crash)")
    return True
