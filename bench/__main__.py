"""`python -m bench [NAME ...] [--quick] [...]`: run the named benchmarks (all by default)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench import (
    agent,
    backup,
    capacity,
    chat,
    fanout,
    health,
    identity,
    llm,
    openai_api,
    plugins,
    retrieval,
    startup,
    streams,
    tasks,
)

BENCHMARKS: dict[str, Callable[[argparse.Namespace], int]] = {
    "health": health.run,
    "identity": identity.run,
    "llm": llm.run,
    "chat": chat.run,
    "retrieval": retrieval.run,
    "fanout": fanout.run,
    "backup": backup.run,
    "plugins": plugins.run,
    "agent": agent.run,
    "streams": streams.run,
    "tasks": tasks.run,
    "openai": openai_api.run,
    "capacity": capacity.run,
    "startup": startup.run,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Relais benchmarks (loopback only).")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few requests: a smoke run, not a measurement (results go to <name>.quick.json)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="measured requests per scenario [health: 2000, 200 with --quick; identity: 1000 for "
        "GET /auth/me and GET /api/chats, 100 with --quick, and a twentieth of those for login; llm: "
        "max(100, 10 x concurrency) per target, max(10, concurrency) with --quick; chat: max(100, 10 x "
        "concurrency) per target, max(10, 2 x concurrency) with --quick]",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="unmeasured requests before each scenario [health: 200, 20 with --quick; identity: 100 "
        "for the GET routes, 10 with --quick, and a twentieth of those for login; llm: 10, 2 "
        "with --quick, at least one per worker; chat: as llm]",
    )
    parser.add_argument(
        "--concurrency",
        default=None,
        help="comma-separated numbers of requests in flight [health: 1,16; identity: 1,16; llm: 1,64; chat: 1,16]",
    )
    parser.add_argument("--output", default=None, help="JSON results file [bench/results/<name>.json]")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    # Left as None when not given: each benchmark has its own defaults (common.resolve_defaults).
    if args.concurrency is not None:
        try:
            args.concurrency = [int(value) for value in args.concurrency.split(",") if value.strip()]
        except ValueError:
            parser.error("--concurrency takes integers, e.g. 1,16")
        if not args.concurrency or min(args.concurrency) < 1:
            parser.error("--concurrency takes positive integers, e.g. 1,16")
    if (args.requests is not None and args.requests < 1) or (args.warmup is not None and args.warmup < 0):
        parser.error("--requests must be >= 1 and --warmup >= 0")
    if args.output is not None and len(args.names or BENCHMARKS) > 1:
        parser.error("--output needs a single benchmark name")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    status = 0
    for name in args.names or list(BENCHMARKS):
        status = BENCHMARKS[name](args) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
