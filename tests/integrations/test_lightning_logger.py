"""PyTorch Lightning's logger, by a real training of a tiny model (skipped where
Lightning is not installed: `.ci/run` installs it for the first of its two runs)."""

import pytest

import mltrail

lightning = pytest.importorskip("lightning", reason="pip install -e '.[lightning]' (torch and Lightning)")
torch = pytest.importorskip("torch")
pytestmark = [  # Lightning's own warnings about itself and the newest torch, not about the logger
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
]


class Tiny(lightning.LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 4):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)


def trainer(logger, tmp_path, **options):
    return lightning.Trainer(logger=logger, max_epochs=3, accelerator="cpu", enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp_path, log_every_n_steps=1, **options)


def test_a_training_logs_hyperparams_step_and_epoch_metrics_and_checkpoints(store, tmp_path):
    logger = mltrail.lightning.MltrailLogger(store, "tiny", name="first")
    checkpoint = lightning.pytorch.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=1)
    trainer(logger, tmp_path, callbacks=[checkpoint]).fit(Tiny(lr=0.05), loader(), loader())
    run = store.get_run("first")
    assert run["run"]["status"] == "FINISHED"
    params = dict(zip(run["params"]["key"], run["params"]["value"]))
    assert params == {"lr": "0.05", "hidden": "4"}
    history = store.metric_history([run["run"]["run_id"]])
    assert len(history[history["key"] == "train_loss_step"]) == 12  # 4 batches × 3 epochs
    assert history[history["key"] == "train_loss_epoch"]["step"].nunique() == 3
    assert len(history[history["key"] == "val_loss"]) == 3
    best = run["tags"]["best_checkpoint"]
    assert best in set(run["artifacts"]["path"]) and best.startswith("checkpoints/")
    state = torch.load(store.artifact_path(run["run"]["run_id"], best), weights_only=False)
    assert "state_dict" in state


def test_the_logger_writes_into_the_active_run_and_leaves_it_open(store, tmp_path):
    with store.start_run("tiny", name="mine") as run:
        trainer(mltrail.lightning.MltrailLogger(log_checkpoints=False), tmp_path,
                enable_checkpointing=False).fit(Tiny(), loader())
        assert run.status == "RUNNING"
    info = store.get_run("mine")
    assert info["artifacts"].empty and "train_loss_step" in set(info["metrics"]["key"])


def test_the_logger_logs_weight_histograms_when_asked_and_any_the_module_logs(store, tmp_path):
    class Watched(Tiny):
        def on_after_backward(self):
            self.logger.log_histogram("grads/net.0.weight", self.net[0].weight.grad, step=self.global_step)

    logger = mltrail.lightning.MltrailLogger(store, "tiny", name="watched", log_weights_every_n_steps=4)
    trainer(logger, tmp_path, enable_checkpointing=False).fit(Watched(), loader(), loader())
    run_id = store.resolve_run("watched")
    table = store.histograms([run_id])
    weights = table[table["key"] == "weights/net.0.weight"]
    assert weights["step"].tolist() == [0, 4, 8]  # 12 steps, every 4th
    assert set(table["key"]) == {"weights/net.0.weight", "weights/net.0.bias", "weights/net.2.weight",
                                 "weights/net.2.bias", "grads/net.0.weight"}
    assert all(sum(counts) == 8 for counts in weights["counts"])  # a 2 -> 4 layer: 8 weights
    assert len(table[table["key"] == "grads/net.0.weight"]) == 12
    with pytest.raises(mltrail.InvalidInputError, match="log_weights_every_n_steps"):
        mltrail.lightning.MltrailLogger(store, "tiny", log_weights_every_n_steps=0)
