"""Add a simulated A/B experiment to the sample store: users with known true rates.

Two churn models compete on a retention offer: customers shown the offer by the new
model (treatment) stay with a true probability of 13.0%, by the current one (control)
10.0%. Users arrive, are assigned, exposed and either convert or not, logged through
the same embedded API a service would use.

    python sample_runs/make_ab_sample.py            # into sample_runs/
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

import mltrail

HERE = Path(__file__).resolve().parent
TRUE_RATES = {"control": 0.10, "treatment": 0.13}
SPEC = {
    "key": "churn-offer-v2",
    "owner": "growth team",
    "hypothesis": {"null": "the new churn model's offers retain customers as often as the current one's",
                   "alternative": "the new model's offers retain more customers"},
    "primary": {"name": "retained", "kind": "binary", "direction": "increase"},
    "guardrails": [{"name": "offer_cost", "kind": "continuous", "direction": "decrease"}],
    "variants": [{"name": "control", "weight": 0.5, "control": True, "model": "models:/churn@production"},
                 {"name": "treatment", "weight": 0.5, "model": "models:/churn@candidate"}],
    "baseline": 0.10, "mde": 0.03, "alpha": 0.05, "power": 0.8,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=HERE)
    parser.add_argument("--users", type=int, default=4_000)
    args = parser.parse_args()
    shutil.rmtree(args.store / "ab" / SPEC["key"], ignore_errors=True)
    shutil.rmtree(args.store / ".cache" / "ab" / SPEC["key"], ignore_errors=True)
    store = mltrail.Store(args.store)
    exp = store.ab.create(SPEC, by="sample script").start(by="sample script")
    rng = np.random.default_rng(2026)
    users = [f"customer-{i:05d}" for i in range(args.users)]
    for user, variant in zip(users, exp.assign_batch(users)):
        exp.log_exposure(user, variant)
        if rng.random() < TRUE_RATES[variant]:
            exp.log_feedback(user, "retained", 1.0)
        exp.log_feedback(user, "offer_cost", float(round(rng.gamma(2.0, 2.5), 2)))
    exp.log.flush()
    result = exp.results()
    print(result.table.to_string())
    print(result.recommendation)


if __name__ == "__main__":
    main()
