"""The server's interceptor chain, outermost first:

    request_id  → the call's id, echoed in trailing metadata and every log line
    observe     → access log and Prometheus metrics, with the final status code
    errors      → DomainError → google.rpc.Status with details; anything else → INTERNAL
    auth        → the method's AccessRule: public, anonymous or authenticated + permission

Each concern is a `CallScope` (an async context manager around one call); `chain`
nests them into a single grpc.aio interceptor so a call pays for one wrapper.
"""

from server.interceptors.chain import CallScope, chain

__all__ = ["CallScope", "chain"]
