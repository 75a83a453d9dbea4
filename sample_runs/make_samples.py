"""Make the committed sample store by really training models, as a user would.

A team compares model families for churn prediction (experiment
``churn_model_mlops``) and then tries feature subsets for the best family
(``churn_feature_ablation``). Metrics are logged per epoch/iteration, params in
groups, the dataset and the fitted model as artifacts; one run fails on a bad
hyperparameter, as runs do.

Two of the eight features come from the feature store: ``customer_activity``
(support calls, late payments) holds snapshots per customer over time in
``data/customer_activity.parquet``, and the training set is joined point-in-time at
each customer's label time (a snapshot from after it must not leak), saved in the
store, and logged by every run as the exact data it trained on.

    pip install -e '.[samples]'
    python sample_runs/make_samples.py --fresh          # rewrites sample_runs/

It ends with the team's review: a saved view of the model families' curves and a report
(``reports/churn-review.md``) drawn from the runs.

Deterministic: the same script gives the same params, metrics and artifacts; only
IDs, times and the capture of the machine (git, host) differ.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

import mltrail

HERE = Path(__file__).resolve().parent
FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls",
            "contract_months", "late_payments", "data_usage_gb", "num_products"]
ACTIVITY = ["support_calls", "late_payments"]  # served by the feature store
SEED = 7
LABEL_DAY = pd.Timestamp("2026-10-01", tz="UTC")


def churn_data(rows: int = 2000) -> pd.DataFrame:
    """A churn-like table: 8 customer features, ~27% churners, a label time each."""
    x, y = make_classification(n_samples=rows, n_features=len(FEATURES), n_informative=5,
                               n_redundant=2, weights=[0.73], flip_y=0.03, random_state=SEED)
    frame = pd.DataFrame(np.round(x, 4), columns=FEATURES)
    frame.insert(0, "customer_id", np.arange(10_000, 10_000 + rows))
    frame.insert(1, "label_time", LABEL_DAY + pd.to_timedelta(np.arange(rows) * 7, unit="min"))
    frame["churned"] = y
    return frame


def activity_snapshots(frame: pd.DataFrame) -> pd.DataFrame:
    """The activity features as a pipeline would have written them: per customer a stale
    snapshot (30 days before the label), the one current at the label (1 day before), and
    one from 2 weeks after it, which a point-in-time join must not use."""
    rng = np.random.default_rng(SEED)
    snapshots = []
    for offset, noise in ((-30, 1.0), (-1, 0.0), (14, 1.0)):
        part = frame[["customer_id"]].copy()
        part["event_ts"] = frame["label_time"] + pd.Timedelta(days=offset)
        part["created_ts"] = part["event_ts"] + pd.Timedelta(hours=1)
        for column in ACTIVITY:
            part[column] = np.round(frame[column] + noise * rng.normal(size=len(frame)), 4)
        snapshots.append(part)
    return pd.concat(snapshots, ignore_index=True).sort_values(["event_ts", "customer_id"], ignore_index=True)


def training_set(store: mltrail.Store, frame: pd.DataFrame, labels: Path) -> tuple[pd.DataFrame, Path]:
    """The training table: the labels' static columns plus the activity features joined
    point-in-time from the feature store, saved in the store."""
    activity = labels.parent / "customer_activity.parquet"
    activity_snapshots(frame).to_parquet(activity, index=False)
    fs = store.features
    fs.apply_entity("customer", join_keys=["customer_id"], description="a subscriber", by="sample script")
    fs.apply_view("customer_activity", entity="customer", source=activity, timestamp_field="event_ts",
                  created_timestamp_field="created_ts", ttl="14d", features={c: "float" for c in ACTIVITY},
                  description="support calls and late payments, from the billing pipeline", by="sample script")
    entity = frame.drop(columns=ACTIVITY).rename(columns={"label_time": "event_timestamp"})
    joined = fs.get_historical_features(entity, [f"customer_activity:{c}" for c in ACTIVITY], as_known_then=True)
    train = joined.rename(columns={"event_timestamp": "label_time"})[frame.columns]
    assert train[FEATURES].equals(frame[FEATURES]), "the point-in-time join did not give the label-time values"
    saved = fs.save_dataset("churn_training", train, features=[f"customer_activity:{c}" for c in ACTIVITY],
                            by="sample script")
    return train, saved.path


def scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    predicted = (proba >= 0.5).astype(int)
    return {
        "val/loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "val/accuracy": float(accuracy_score(y_true, predicted)),
        "val/f1": float(f1_score(y_true, predicted, zero_division=0)),
        "val/auc": float(roc_auc_score(y_true, proba)),
    }


def log_epochs(run: mltrail.Run, history: list[dict[str, float]]) -> None:
    """Log each epoch's scores; mark the epoch with the best AUC."""
    best = max(range(len(history)), key=lambda i: history[i]["val/auc"])
    for step, values in enumerate(history, start=1):
        run.log_metrics({k: v for k, v in values.items() if k != "val/auc"}, step=step)
        run.log_metric("val/auc", values["val/auc"], step=step, best=(step - 1 == best))


def train_logistic(x_tr, y_tr, x_va, y_va, c: float, epochs: int = 15):
    model = LogisticRegression(C=c, max_iter=1, warm_start=True, solver="lbfgs")
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one iteration per "epoch"
        for _ in range(epochs):
            model.fit(x_tr, y_tr)
            history.append(scores(y_va, model.predict_proba(x_va)[:, 1]))
    return model, history


def train_forest(x_tr, y_tr, x_va, y_va, max_depth: int, trees_per_epoch: int = 5, epochs: int = 6):
    model = RandomForestClassifier(n_estimators=0, max_depth=max_depth, warm_start=True,
                                   random_state=SEED)
    history = []
    for epoch in range(1, epochs + 1):
        model.set_params(n_estimators=epoch * trees_per_epoch)
        model.fit(x_tr, y_tr)
        history.append(scores(y_va, model.predict_proba(x_va)[:, 1]))
    return model, history


def train_boosting(x_tr, y_tr, x_va, y_va, learning_rate: float, n_estimators: int = 40):
    model = GradientBoostingClassifier(learning_rate=learning_rate, n_estimators=n_estimators,
                                       max_depth=3, random_state=SEED)
    model.fit(x_tr, y_tr)
    history = [scores(y_va, proba[:, 1]) for proba in model.staged_predict_proba(x_va)]
    return model, history[4::5]  # every 5th stage is one logged "epoch"


def fit_and_log(store: mltrail.Store, experiment: str, description: str, name: str,
                family: str, hyper: dict, data: dict, dataset: Path, features: list[str],
                workdir: Path, training: Path) -> mltrail.Run:
    trainer = {"logistic": train_logistic, "random_forest": train_forest,
               "gradient_boosting": train_boosting}[family]
    with store.start_run(experiment, name=name, experiment_description=description,
                         description=f"{family} with {hyper}", tags={"team": "growth",
                         "family": family}, log_packages=False) as run:
        run.log_params({"family": family, **hyper}, group="model")
        run.log_params({"features": ",".join(features), "n_features": len(features),
                        "val_fraction": 0.25, "seed": SEED}, group="data")
        run.log_dataset(dataset, name="churn", context="labels")
        run.log_dataset(training, name="churn_training", context="training")
        cols = [FEATURES.index(f) for f in features]
        model, history = trainer(data["x_tr"][:, cols], data["y_tr"], data["x_va"][:, cols],
                                 data["y_va"], **hyper)
        log_epochs(run, history)
        path = workdir / "model.pkl"
        path.write_bytes(pickle.dumps(model))
        run.log_artifact(path)
        run.set_tag("stage", "candidate")
    return run


REVIEW = """\
---
title: Churn model review
---
# Churn model review

Which model family predicts churn best, which features can we drop, and did the retention
offer work? Every number below is read from the store when the report is drawn.

## The candidates

```mltrail runs
experiment: churn_model_mlops
filter: attributes.status = 'FINISHED'
order_by: metrics.`val/auc` DESC
columns: [params.family, metrics.val/auc, metrics.val/f1, metrics.val/loss]
```

The best validation AUC:

```mltrail value
experiment: churn_model_mlops
order_by: metrics.`val/auc` DESC
column: metrics.val/auc
```

## Learning curves, by model family

```mltrail chart
view: model-families
```

## What the features are worth

```mltrail runs
experiment: churn_feature_ablation
order_by: metrics.`val/auc` DESC
columns: [params.features, metrics.val/auc]
```

## The retention offer, on live traffic

```mltrail ab
experiment: churn-offer-v2
metrics: retained
```
"""


def write_review(store: mltrail.Store) -> None:
    """A saved view of the model families' curves and a report that reads them, with the
    ablation and the A/B test of the retention offer (make_ab_sample.py): the team's review."""
    for folder in ("views", "reports"):
        shutil.rmtree(store.root / folder, ignore_errors=True)
    store.views.save("model-families", experiments=["churn_model_mlops"], charts=["val/auc", "val/loss"],
                     group_by=["params.family"], band="minmax", by="sample script",
                     description="each model family's learning curves, from its best run to its worst")
    store.reports.save("churn-review", REVIEW, by="sample script")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=HERE, help="store root (default: sample_runs/)")
    parser.add_argument("--fresh", action="store_true", help="delete the store's runs first")
    args = parser.parse_args()
    if args.fresh:
        for folder in ("experiments", "blobs", "blobs-large", ".cache", "features"):
            shutil.rmtree(args.store / folder, ignore_errors=True)
    store = mltrail.Store(args.store)
    frame = churn_data()
    dataset = args.store / "data" / "churn.csv"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(dataset, index=False)
    frame, training = training_set(store, frame, dataset)
    x, y = frame[FEATURES].to_numpy(), frame["churned"].to_numpy()
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=SEED, stratify=y)
    data = {"x_tr": x_tr, "y_tr": y_tr, "x_va": x_va, "y_va": y_va}
    study = "churn_model_mlops"
    about = "churn model study: which model family predicts churn best"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan = [
            ("logreg-C0.1", "logistic", {"c": 0.1}),
            ("logreg-C1", "logistic", {"c": 1.0}),
            ("rf-depth4", "random_forest", {"max_depth": 4}),
            ("rf-depth8", "random_forest", {"max_depth": 8}),
            ("gb-lr0.05", "gradient_boosting", {"learning_rate": 0.05}),
            ("gb-lr0.2", "gradient_boosting", {"learning_rate": 0.2}),
        ]
        for name, family, hyper in plan:
            run = fit_and_log(store, study, about, name, family, hyper, data, dataset, FEATURES, work, training)
            print(f"{study}: {run.name} {run.status}")
        try:  # a real failure: scikit-learn rejects max_depth=-1
            fit_and_log(store, study, about, "rf-bad-depth", "random_forest", {"max_depth": -1},
                        data, dataset, FEATURES, work, training)
        except ValueError as exc:
            print(f"{study}: rf-bad-depth FAILED ({type(exc).__name__})")
        ablation = "churn_feature_ablation"
        about = "gradient boosting with fewer features: what can we drop?"
        for name, drop in (("all-features", []), ("no-usage", ["data_usage_gb", "num_products"]),
                           ("billing-only", ["tenure_months", "support_calls", "contract_months",
                                             "data_usage_gb"])):
            features = [f for f in FEATURES if f not in drop]
            run = fit_and_log(store, ablation, about, name, "gradient_boosting",
                              {"learning_rate": 0.1}, data, dataset, features, work, training)
            print(f"{ablation}: {run.name} {run.status}")
    write_review(store)
    print(store.compact().summary())


if __name__ == "__main__":
    main()
