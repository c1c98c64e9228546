"""Helpers for the live tests: an xcore /ws client, a gRPC Subscribe reader, publishing on a stack's bus."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import orjson
from relais.v1 import live_pb2, live_pb2_grpc
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.events.topics import Topic
from tests.support.live import LiveStack


def ws_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://") + "/ws" + query


def receive(socket: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return dict(orjson.loads(socket.recv(timeout=timeout)))


@contextlib.contextmanager
def authenticated(base_url: str, token: str) -> Iterator[ClientConnection]:
    """A /ws connection that sent the documented auth message and got its `subscribed` event."""
    with connect(ws_url(base_url)) as socket:
        socket.send(orjson.dumps({"type": "auth", "token": f"Bearer {token}"}).decode())
        assert receive(socket)["event"] == "subscribed"
        yield socket


def close_code(socket: ClientConnection, timeout: float) -> int | None:
    """The code the server closed with, reading (and dropping) what comes before it."""
    try:
        while True:
            socket.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def publish(stack: LiveStack, topic: Topic[Any], event: Any) -> None:
    stack.run(stack.server.events.bus.publish(topic, event))


class Subscriber:
    """EventService.Subscribe over a real channel, read in a thread into a queue."""

    def __init__(self, target: str, token: str, topics: list[str]) -> None:
        self.channel = grpc.insecure_channel(target)
        stub = live_pb2_grpc.EventServiceStub(self.channel)
        self.call = stub.Subscribe(
            live_pb2.SubscribeRequest(topics=topics), metadata=[("authorization", f"Bearer {token}")]
        )
        self.events: queue.Queue[live_pb2.SubscribeResponse | grpc.RpcError] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next()
        assert isinstance(first, live_pb2.SubscribeResponse) and first.event == "subscribed", first

    def _read(self) -> None:
        try:
            for event in self._iterate():
                self.events.put(event)
        except grpc.RpcError as error:
            self.events.put(error)

    def _iterate(self) -> Iterator[live_pb2.SubscribeResponse]:
        yield from self.call

    def next(self, timeout: float = 10) -> live_pb2.SubscribeResponse | grpc.RpcError:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()
