"""Add the registry and two simulated A/B experiments to the sample store.

The registry gets a ``churn`` model: version 1 from the logistic-regression run (alias
``production``), version 2 from the gradient-boosting run (alias ``candidate``).

``churn-offer-v2``: the two versions compete on a retention offer. Customers shown the
offer by the candidate stay with a true probability of 13.0%, by production's 10.0%.
4,000 users arrive, are assigned, exposed and either convert or not, logged through the
same embedded API a service would use. The experiment is then stopped with the winner
the analysis recommends, and the winner is promoted: ``production`` moves to version 2.

``churn-offer-timing``: still running (1,500 users so far). The production model sends
the offer 20 days before renewal (treatment) instead of 25 (control); true rates 12.0%
and 12.6%, too close to call yet.

    python sample_runs/make_ab_sample.py            # into sample_runs/ (after make_samples.py)
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np

import mltrail

HERE = Path(__file__).resolve().parent
HYPOTHESIS = {"null": "the new churn model's offers retain customers as often as the current one's",
              "alternative": "the new model's offers retain more customers"}
DECIDED = {
    "key": "churn-offer-v2",
    "owner": "growth team",
    "hypothesis": HYPOTHESIS,
    "primary": {"name": "retained", "kind": "binary", "direction": "increase"},
    "guardrails": [{"name": "offer_cost", "kind": "continuous", "direction": "decrease"}],
    "variants": [{"name": "control", "weight": 0.5, "control": True, "model": "models:/churn@production"},
                 {"name": "treatment", "weight": 0.5, "model": "models:/churn@candidate"}],
    "baseline": 0.10, "mde": 0.03, "alpha": 0.05, "power": 0.8,
}
RUNNING = {
    "key": "churn-offer-timing",
    "owner": "retention team",
    "hypothesis": {"null": "an offer 20 days before renewal retains as often as one 25 days before",
                   "alternative": "the earlier offer retains more customers"},
    "primary": {"name": "retained", "kind": "binary", "direction": "increase"},
    "variants": [{"name": "control", "weight": 0.5, "control": True, "model": "models:/churn@production"},
                 {"name": "treatment", "weight": 0.5, "model": "models:/churn@production"}],
    "baseline": 0.12, "mde": 0.03, "alpha": 0.05, "power": 0.8, "sequential": True,
}


def register_models(store: mltrail.Store) -> None:
    registry = store.registry
    registry.create("churn", description="who will leave within 90 days", tags={"team": "growth"},
                          by="sample script")
    registry.register("churn", "logreg-C1", description="logistic regression, the first model deployed",
                      by="sample script")
    registry.register("churn", "gb-lr0.2", description="gradient boosting: best validation AUC",
                      by="sample script")
    registry.set_alias("churn", "production", 1, reason="first deployment", by="sample script")
    registry.set_alias("churn", "candidate", 2, reason="best val/auc of the model study", by="sample script")


def simulate(store: mltrail.Store, spec: dict[str, Any], rates: dict[str, float], users: int,
             seed: int) -> Any:
    exp = store.ab.create(spec, by="sample script").start(by="sample script")
    rng = np.random.default_rng(seed)
    names = [f"{spec['key']}-customer-{i:05d}" for i in range(users)]
    has_cost = any(m["name"] == "offer_cost" for m in spec.get("guardrails", []))
    for user, variant in zip(names, exp.assign_batch(names)):
        exp.log_exposure(user, variant)
        if rng.random() < rates[variant]:
            exp.log_feedback(user, "retained", 1.0)
        if has_cost:
            exp.log_feedback(user, "offer_cost", float(round(rng.gamma(2.0, 2.5), 2)))
    exp.log.flush()
    return exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=HERE)
    args = parser.parse_args()
    for folder in (args.store / "registry" / "churn", args.store / ".cache"):
        shutil.rmtree(folder, ignore_errors=True)
    for spec in (DECIDED, RUNNING):
        shutil.rmtree(args.store / "ab" / spec["key"], ignore_errors=True)
    store = mltrail.Store(args.store)
    register_models(store)

    decided = simulate(store, DECIDED, {"control": 0.10, "treatment": 0.13}, users=4_000, seed=2026)
    result = decided.results()
    print(result.table.to_string())
    print(result.recommendation)
    winner = "treatment" if result.recommendation.startswith("Ship treatment") else None
    decided.stop(winner, result.recommendation, by="sample script")
    if winner:
        promoted = store.promote_winner(DECIDED["key"], alias="production", by="sample script")
        print(f"promoted: churn@production -> v{promoted.number}")

    running = simulate(store, RUNNING, {"control": 0.12, "treatment": 0.126}, users=1_500, seed=7)
    print(running.results().recommendation)


if __name__ == "__main__":
    main()
