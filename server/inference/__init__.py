"""Text generation: the model catalogue, the backends, and the streaming services.

config.py       what an operator configures per model
backend.py      the interface every backend implements
local.py        llama.cpp in-process (the default)
triton.py       Triton Inference Server over gRPC
openai_compat.py  OpenAI-compatible HTTP servers
catalogue.py    the configured models and the `auto` router
service.py      start a generation, relay (and coalesce) its chunks, metrics
servicer.py     the gRPC servicers
domain.py       assembly for the server
"""
