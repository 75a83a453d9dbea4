"""Play users against the A/B router: each is served by its variant's model and converts
with that variant's known true rate, and the conversion is sent back as feedback.

    python sample_runs/traffic.py --router http://127.0.0.1:8700 --experiment churn-live \\
        --rate control=0.10 --rate treatment=0.13 --users 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random

import aiohttp

FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "contract_months",
            "late_payments", "data_usage_gb", "num_products"]


async def play(args: argparse.Namespace) -> collections.Counter:
    rates = {k: float(v) for k, v in (pair.split("=") for pair in args.rate)}
    rng = random.Random(args.seed)
    outcomes: collections.Counter = collections.Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.users):
        queue.put_nowait(i)
    base = args.router.rstrip("/") + f"/experiments/{args.experiment}"

    async def user_worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            unit = f"visitor-{args.seed}-{i}"
            features = {name: rng.gauss(0, 1) for name in FEATURES}
            async with session.post(f"{base}/predict", json={"unit_id": unit, "features": features}) as reply:
                if reply.status != 200:
                    outcomes[f"error {reply.status}"] += 1
                    continue
                answer = await reply.json()
            variant = answer["variant"]
            outcomes[variant] += 1
            if answer["exposed"] and rng.random() < rates.get(variant, 0.0):
                async with session.post(f"{base}/feedback",
                                        json={"unit_id": unit, "metric": args.metric, "value": 1.0}) as reply:
                    reply.raise_for_status()
                outcomes[f"{variant} converted"] += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(user_worker(session) for _ in range(args.concurrency)))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--router", default="http://127.0.0.1:8700")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--metric", default="retained")
    parser.add_argument("--rate", action="append", required=True, help="VARIANT=TRUE_RATE (repeat)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for key, count in sorted(asyncio.run(play(args)).items()):
        print(f"{key}: {count}")


if __name__ == "__main__":
    main()
