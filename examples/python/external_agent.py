#!/usr/bin/env python3
"""An external GAMESA agent in Python: the FixedCores strategy of docs/agents.md.

The daemon's config names the agent and the client it answers through:

    [[clients]]
    name = "cores-bot"
    token = "..."

    [[agents]]
    kind = "external"
    id = "cores0"
    client = "cores-bot"
    effects = ["order:cpu_cores"]

This process says hello as that client, attaches the agent, and answers every `turn`
event (one observation per tick) with an `intents` request before the deadline the
turn carries: it declares `--cores` CPU cores once, then each tick offers those not
leased out or already offered, in an ask at `--price` that rests through the tick.
Missing a deadline, dropping the connection or answering with something that is not
intents counts as the agent's failure: restarted, then isolated.

Needs the `msgpack` package from PyPI: python3 -m pip install msgpack

    python3 examples/python/external_agent.py --unix /run/gamesa/ingress.sock \\
        --client cores-bot --token ... --agent cores0
"""

import argparse
import sys

from client import Client, GamesaError, add_connection_args


class FixedCores:
    """Sells `cores` CPU cores at `price` credits each, as examples/fixed-cores does."""

    def __init__(self, cores, price):
        self.cores = cores
        self.price = min(max(price, 1), 1_000_000_000)
        self.declared = False

    def observe(self, observation):
        me = observation["agent"]
        intents = []
        if not self.declared:
            self.declared = True
            intents.append(
                {"intent": "set_capacity", "resource": "cpu_cores", "quantity": self.cores}
            )
        granted = sum(
            lease["quantity"]
            for lease in observation["leases"]
            if lease["seller"] == me and lease["resource"] == "cpu_cores"
        )
        resting = sum(
            order["quantity"]
            for _, order in observation["open_orders"]
            if order["resource"] == "cpu_cores" and order["side"] == "ask"
        )
        free = max(self.cores - granted - resting, 0)
        if free > 0:
            intents.append(
                {
                    "intent": "place",
                    "resource": "cpu_cores",
                    "side": "ask",
                    "price": self.price,
                    "quantity": free,
                    # Rests through this tick only: re-quoted next tick.
                    "time_in_force": {"limit": {"expires_at": observation["tick"]}},
                }
            )
        return intents


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_args(parser)
    parser.add_argument("--agent", required=True, help="the agent's `id` in config")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--price", type=int, default=500)
    parser.add_argument("--turns", type=int, help="stop after this many turns")
    args = parser.parse_args()

    client = Client.from_args(args)
    attached = client.call({"type": "attach", "agent": args.agent})
    print(
        f"attached {attached['agent']} (participant {attached['id']}), "
        f"deadline {attached['deadline_ms']} ms",
        flush=True,
    )
    # Turns come once a tick; the daemon may be idle between runs of ticks.
    client.sock.settimeout(None)
    strategy = FixedCores(args.cores, args.price)
    turns = 0
    while args.turns is None or turns < args.turns:
        event = client.events.pop(0) if client.events else client.read_frame()
        if event.get("topic") != "turn":
            continue
        observation = event["data"]["observation"]
        if event["lost"]:
            print(f"{event['lost']} turns were lost before tick {event['tick']}", flush=True)
        turns += 1
        try:
            answer = client.call(
                {"type": "intents", "tick": event["tick"], "intents": strategy.observe(observation)}
            )
            print(f"tick {answer['tick']}: {answer['intents']} intents", flush=True)
        except GamesaError as error:
            # `no_turn`: the answer came after the deadline, and the daemon counted a miss.
            print(f"tick {event['tick']}: not taken: {error}", flush=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
