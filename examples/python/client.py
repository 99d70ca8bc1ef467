#!/usr/bin/env python3
"""A GAMESA ingress client in Python, written from docs/protocol.md alone.

It connects over TCP or a Unix socket, says hello, reads health, injects a
performance signal, reads a book, (with --progress COMPONENT) reports a workload's
progress on a component, and (with --order) bids for GPU memory and waits for the
reply, which comes after the tick that took the order in.

Needs the `msgpack` package from PyPI: python3 -m pip install msgpack

    python3 examples/python/client.py --tcp 127.0.0.1:7411 --client game --token ...
    python3 examples/python/client.py --unix /run/gamesa/ingress.sock --client game --token ...
"""

import argparse
import json
import socket
import struct
import sys

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 1 << 20


class GamesaError(Exception):
    """An error reply: a stable code and a message."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.next_id = 1
        self.events = []

    @classmethod
    def tcp(cls, address):
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    @classmethod
    def unix(cls, path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(path)
        return cls(sock)

    def _read_exact(self, count):
        data = bytearray()
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data.extend(chunk)
        return bytes(data)

    def send(self, message):
        """Sends one request (a dict with `type`); returns its id."""
        request_id = self.next_id
        self.next_id += 1
        body = msgpack.packb(dict(message, id=request_id), use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        return request_id

    def read_frame(self):
        (length,) = struct.unpack(">I", self._read_exact(4))
        if length > MAX_FRAME_BYTES:
            raise ValueError(f"frame of {length} bytes is too large")
        return msgpack.unpackb(self._read_exact(length), raw=False)

    def wait(self, request_id):
        """Reads until the reply to `request_id`; events meanwhile are kept."""
        while True:
            frame = self.read_frame()
            if "topic" in frame:
                self.events.append(frame)
                continue
            if frame.get("id") not in (request_id, None):
                continue
            if frame["ok"]:
                return frame["result"]
            raise GamesaError(frame["error"]["code"], frame["error"]["message"])

    def call(self, message):
        return self.wait(self.send(message))

    @classmethod
    def from_args(cls, args):
        """Connects as `add_connection_args` read from the command line, and says hello."""
        client = cls.tcp(args.tcp) if args.tcp else cls.unix(args.unix)
        client.hello_result = client.call(
            {
                "type": "hello",
                "protocol_version": PROTOCOL_VERSION,
                "client": args.client,
                "token": args.token,
            }
        )
        return client

    def progress(self, component, amount, left=None):
        """Reports `amount` units of work (frames, steps: any non-negative number)
        done on `component` since the previous report; needs `progress:<component>`.
        `left`, when the workload knows its job's size: the work still to do."""
        request = {"type": "progress", "component": component, "amount": amount}
        if left is not None:
            request["left"] = left
        return self.call(request)


def add_connection_args(parser):
    """--tcp or --unix, and the client's name and token."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", help="host:port of the TCP listener")
    where.add_argument("--unix", help="path of the Unix socket")
    parser.add_argument("--client", required=True)
    parser.add_argument("--token", required=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_args(parser)
    parser.add_argument("--order", action="store_true", help="also bid for GPU memory")
    parser.add_argument("--progress", metavar="COMPONENT", help="also report progress on it")
    args = parser.parse_args()

    client = Client.tcp(args.tcp) if args.tcp else Client.unix(args.unix)
    health = client.call({"type": "query", "query": "health"})
    print(f"health: {health['status']}, tick {health['tick']}, {health['server']}")

    hello = client.call(
        {
            "type": "hello",
            "protocol_version": PROTOCOL_VERSION,
            "client": args.client,
            "token": args.token,
        }
    )
    print(f"hello: {hello['client']} is agent {hello['agent']}, effects {hello['effects']}")

    signal = client.call(
        {
            "type": "signal",
            "kind": "game_started",
            "domain": "performance",
            "strength": 0.9,
            "ttl_ticks": 50,
        }
    )
    print(f"signal: queued for tick {signal['tick']}, correlation {signal['correlation']}")

    book = client.call({"type": "query", "query": "book", "resource": "power_budget_mw"})
    print(
        f"book {book['resource']}: last {book['last_price']}, "
        f"bid {book['best_bid']}, ask {book['best_ask']}"
    )

    try:
        client.call({"type": "signal", "kind": "x", "domain": "safety", "strength": 1})
    except GamesaError as error:
        print(f"refused as expected: {error.code}")

    if args.progress:
        progress = client.progress(args.progress, 2.5)
        print(
            f"progress: {progress['micro']} micro-units of {progress['component']} "
            f"queued for tick {progress['tick']}"
        )

    if args.order:
        # Fills are announced to subscribers; the order's reply comes after its tick.
        client.call({"type": "subscribe", "topic": "fills"})
        order = client.call(
            {
                "type": "order",
                "resource": "gpu_memory_mb",
                "side": "bid",
                "price": 500,
                "quantity": 512,
                "expires_after_ticks": 10,
            }
        )
        print(f"order: {json.dumps(order)}")
        filled = order["filled"]
        while filled < 512:
            event = client.events.pop(0) if client.events else client.read_frame()
            if event.get("topic") != "fills":
                continue
            fill = event["data"]
            if fill["correlation"] == order["correlation"]:
                filled += fill["quantity"]
                print(
                    f"fill: {fill['quantity']} {fill['resource']} from {fill['seller_name']} "
                    f"at {fill['price']} (tick {event['tick']}, lost {event['lost']})"
                )
        print(f"filled: {filled}")
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
