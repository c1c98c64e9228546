"""Event fan-out: N subscribers on one process (1,000 by default) receive a lone event, then a
burst of events published back to back. Two parts:

1. The event bus alone: N subscriptions of the in-process bus, each read by an asyncio task.
   Per delivered event, the time from `publish` to the subscriber's task holding it, the
   burst's delivery time, and the memory of an idle subscriber (tracemalloc: subscription and
   reading task).
2. Through a Relais server, as clients see it: a Relais child (`relais serve` as a benchmark
   child, with RELAIS_REDIS_URL) holds N EventService.Subscribe gRPC streams opened by this
   process (10 HTTP/2 connections); the events are published on the child's Redis channels by
   another publisher (this process), as another replica would. Per event, the time from publish
   to the client holding it (Redis, the child's bus, gRPC, the client's own reading included),
   and the child's resident memory per open subscription (psutil). Skipped when Redis is down.

    .venv/bin/python -m bench fanout            # 1,000 subscribers, bursts of 100 events
    .venv/bin/python -m bench fanout --quick    # 200 subscribers, bursts of 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import secrets
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from bench import common
from bench.common import output_path, percentile, write_json
from server.events import LocalBus
from server.events.bus import Selector
from server.events.topics import PLUGIN_LOADED, PluginChanged

REDIS_URL = "redis://127.0.0.1:6379/0"
CHILD_CONFIG = "bench-fanout.json"
EMAIL = "bench@example.com"
CHANNELS = 10


async def _reader(subscription: Any, expected: int, latencies: list[float]) -> None:
    seen = 0
    async for envelope in subscription:
        latencies.append(time.perf_counter() - envelope.event.details["sent"])
        seen += 1
        if seen == expected:
            return


async def measure(subscribers: int, burst: int) -> dict[str, Any]:
    bus = LocalBus()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    latencies: list[float] = []
    subscriptions = [bus.subscribe([Selector(PLUGIN_LOADED)], capacity=burst * 2) for _ in range(subscribers)]
    readers = [asyncio.create_task(_reader(sub, burst, latencies)) for sub in subscriptions]
    await asyncio.sleep(0)  # every reader waiting on its queue
    idle = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    started = time.perf_counter()
    for index in range(burst):
        await bus.publish(PLUGIN_LOADED, PluginChanged(name=f"p{index}", details={"sent": time.perf_counter()}))
    await asyncio.gather(*readers)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "subscribers": subscribers,
        "burst": burst,
        "deliveries": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000,
        "burst_delivered_s": elapsed,
        "deliveries_per_s": len(latencies) / elapsed,
        "bytes_per_idle_subscriber": idle / subscribers,
    }


# ── Part 2: a Relais child's Subscribe streams ──────────────────────────────────────────────


async def serve_relais(data_dir: Path) -> common.Served:
    config = json.loads((data_dir / CHILD_CONFIG).read_text())
    return await common.start_relais(
        data_dir,
        admin_email=EMAIL,
        admin_password=config["password"],
        redis_url=REDIS_URL,
        events_channel_prefix=config["prefix"],
        journal_prefix=config["prefix"] + "journal:",
        llm_preload=False,
        retrieval_preload=False,
        models=[{"key": "down", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"}],
    )


def serve_main(argv: list[str]) -> None:
    """Child entry point: `python -m bench.fanout serve relais DATA_DIR`."""
    common.serve_main(argv, "bench.fanout", {"relais": serve_relais})


async def _redis_up() -> bool:
    from redis import asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        return bool(await asyncio.wait_for(client.ping(), 2))
    except Exception:
        return False
    finally:
        await client.aclose()


class Streams:
    """N Subscribe streams over CHANNELS connections, each read by its own task into `latencies`."""

    def __init__(self, target: str, token: str) -> None:
        import grpc

        options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel, not shared
        self.channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(CHANNELS)]
        self.metadata = [("authorization", f"Bearer {token}")]
        self.latencies: list[float] = []
        self.received = 0
        self.expected = 0
        self.all_received = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, count: int) -> None:
        from relais.v1 import live_pb2, live_pb2_grpc

        ready = [asyncio.get_running_loop().create_future() for _ in range(count)]
        for index, opened in enumerate(ready):
            stub = live_pb2_grpc.EventServiceStub(self.channels[index % CHANNELS])
            call = stub.Subscribe(live_pb2.SubscribeRequest(topics=["plugin.loaded"]), metadata=self.metadata)
            self.tasks.append(asyncio.create_task(self._read(call, opened)))
        await asyncio.wait_for(asyncio.gather(*ready), 120)

    async def _read(self, call: Any, opened: asyncio.Future[None]) -> None:
        async for event in call:
            if event.event == "subscribed":
                opened.set_result(None)
                continue
            self.latencies.append(time.time() - event.data["details"]["sent"])
            self.received += 1
            if self.received >= self.expected:
                self.all_received.set()

    def expect(self, total: int) -> None:
        self.latencies, self.received, self.expected = [], 0, total
        self.all_received.clear()

    async def arrived(self) -> None:
        """Until every expected event arrived, or two minutes (what came is then reported)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_received.wait(), 120)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()


async def measure_server(relais: common.ServerProcess, password: str, prefix: str, subscribers: int, burst: int) -> Any:
    import psutil

    from server.events.redis import RedisBus

    child = psutil.Process(relais.process.pid)
    token = await _login(relais.base_url, password)
    streams = Streams(f"127.0.0.1:{relais.ports['grpc_port']}", token)
    publisher = RedisBus(REDIS_URL, channel_prefix=prefix)
    rss_before = child.memory_info().rss
    opening = time.perf_counter()
    await streams.open(subscribers)
    open_seconds = time.perf_counter() - opening
    await asyncio.sleep(1)  # let the child settle before reading its memory
    rss_held = child.memory_info().rss
    results = []
    try:
        for size in (1, burst):
            streams.expect(size * subscribers)
            cpu = relais.cpu_seconds()
            started = time.perf_counter()
            for index in range(size):
                await publisher.publish(PLUGIN_LOADED, PluginChanged(name=f"p{index}", details={"sent": time.time()}))
            await streams.arrived()
            elapsed = time.perf_counter() - started
            latencies = sorted(streams.latencies)
            results.append(
                {
                    "subscribers": subscribers,
                    "burst": size,
                    "deliveries": len(latencies),
                    "p50_ms": percentile(latencies, 50) * 1000 if latencies else None,
                    "p99_ms": percentile(latencies, 99) * 1000 if latencies else None,
                    "max_ms": latencies[-1] * 1000 if latencies else None,
                    "burst_delivered_s": elapsed,
                    "deliveries_per_s": len(latencies) / elapsed,
                    "server_cpu_ms_per_delivery": (relais.cpu_seconds() - cpu) * 1000 / max(1, len(latencies)),
                    "open_seconds": open_seconds,
                    "rss_per_subscriber_kb": (rss_held - rss_before) / 1024 / subscribers,
                }
            )
            await asyncio.sleep(0.5)
    finally:
        await streams.close()
        await publisher.close()
    return results


async def _login(base_url: str, password: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=common.CALL_TIMEOUT) as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


def through_server(subscribers: int, burst: int) -> list[dict[str, Any]] | None:
    if not asyncio.run(_redis_up()):
        print("  Redis is not reachable at 127.0.0.1:6379: part 2 skipped", file=sys.stderr, flush=True)
        return None
    password = f"bench-{secrets.token_urlsafe(24)}-1"
    prefix = f"bench:fanout:{uuid.uuid4().hex}:"
    with tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch:
        data = Path(scratch) / "relais"
        data.mkdir()
        config = data / CHILD_CONFIG
        config.touch(mode=0o600)
        config.write_text(json.dumps({"password": password, "prefix": prefix}))
        relais = common.ServerProcess("bench.fanout", "relais", data)
        try:
            result: list[dict[str, Any]] = asyncio.run(measure_server(relais, password, prefix, subscribers, burst))
        finally:
            relais.stop()
    return result


def _table(title: str, results: list[dict[str, Any]]) -> str:
    header = f"| {title} | " + " | ".join(f"burst of {r['burst']}" for r in results) + " |"
    lines = [header, "|---" * (len(results) + 1) + "|"]
    for key in results[0]:
        cells = [f"{r[key]:.3f}" if isinstance(r[key], float) else str(r[key]) for r in results]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    subscribers, burst = (200, 20) if args.quick else (1000, 100)
    # One lone event (the fan-out's own latency), then a burst (queueing behind the burst included).
    results = [asyncio.run(measure(subscribers, 1)), asyncio.run(measure(subscribers, burst))]
    sys.stdout.write(_table("fan-out (in-process bus)", results))
    print(f"# fanout part 2: {subscribers} gRPC Subscribe streams on a Relais child", file=sys.stderr, flush=True)
    served = through_server(subscribers, burst)
    if served is not None:
        sys.stdout.write("\n" + _table("fan-out (Relais child, gRPC streams, events via Redis)", served))
    document = {
        "fanout": results,
        "server": served,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
    }
    write_json(output_path(args, "fanout"), document)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
