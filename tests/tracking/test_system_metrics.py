"""System metrics of a run (issue 17): sampled in the background while the run lasts,
logged under MLflow's names, GPUs through NVML when there are any (a fake NVML here,
where no GPU is), nothing when NVML is missing or fails."""

import sys
import time
import types

import pytest

import mltrail
from tests.factories import quiet_run, wait_for

SYSTEM = {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
          "system/system_memory_usage_percentage", "system/disk_usage_percentage", "system/disk_usage_megabytes",
          "system/disk_available_megabytes", "system/network_receive_megabytes",
          "system/network_transmit_megabytes"}


@pytest.fixture(autouse=True)
def fast_samples(monkeypatch):
    monkeypatch.setenv("MLTRAIL_SYSTEM_METRICS_SECONDS", "0.05")


def fake_nvml(gpus=2, fail_init=False):
    """pynvml's calls, answering for ``gpus`` GPUs with fixed readings."""
    nvml = types.ModuleType("pynvml")
    nvml.NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def init():
        if fail_init:
            raise NVMLError("Driver Not Loaded")

    nvml.NVMLError = NVMLError
    nvml.nvmlInit = init
    nvml.nvmlDeviceGetCount = lambda: gpus
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=40 + h, memory=10)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=(h + 1) * 1024**3, total=8 * 1024**3)
    nvml.nvmlDeviceGetTemperature = lambda h, sensor: 60 + h
    nvml.nvmlDeviceGetPowerUsage = lambda h: 150_000 + h  # milliwatts

    def no_power(h):
        raise NVMLError("Not Supported")

    if gpus > 1:  # the second GPU does not report its power: its other readings still count
        nvml.nvmlDeviceGetPowerUsage = lambda h: no_power(h) if h == 1 else 150_000
    return nvml


def _system_points(store, run_id):
    history = store.metric_history([run_id])
    return history[history["key"].str.startswith("system/")]


def test_a_run_samples_the_system_while_it_lasts(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML: no GPU metrics, no error
    run = quiet_run(store, "e", log_system_metrics=True)
    wait_for(lambda: run.monitor.samples >= 3, timeout=10, what="three samples")
    run.end()
    assert not run.monitor._thread.is_alive()
    points = _system_points(store, run.id)
    assert set(points["key"]) == SYSTEM
    steps = sorted(points[points["key"] == "system/cpu_utilization_percentage"]["step"])
    assert steps == list(range(len(steps))) and len(steps) >= 3
    memory = points[points["key"] == "system/system_memory_usage_percentage"]["value"]
    assert memory.between(0, 100).all()
    finished = store.get_run(run.id)["run"]["end_time"]
    assert (points["timestamp"] <= finished).all()  # nothing sampled after the end


def test_gpus_through_nvml(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(gpus=2))
    with quiet_run(store, "e", log_system_metrics=True) as run:
        wait_for(lambda: run.monitor.samples >= 1, timeout=10, what="a sample")
    latest = _system_points(store, run.id).groupby("key")["value"].last()
    assert latest["system/gpu_0_utilization_percentage"] == 40 and latest["system/gpu_1_utilization_percentage"] == 41
    assert latest["system/gpu_1_memory_usage_megabytes"] == 2048 and latest["system/gpu_0_memory_usage_percentage"] == 12.5
    assert latest["system/gpu_0_temperature_celsius"] == 60 and latest["system/gpu_0_power_usage_watts"] == 150
    assert "system/gpu_1_power_usage_watts" not in latest  # not reported: left out, the rest kept


def test_nvml_that_fails_to_start_means_no_gpu_metrics(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(fail_init=True))
    with quiet_run(store, "e", log_system_metrics=True) as run:
        wait_for(lambda: run.monitor.samples >= 1, timeout=10, what="a sample")
    assert set(_system_points(store, run.id)["key"]) == SYSTEM


def test_the_environment_turns_it_on_and_the_default_is_off(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with quiet_run(store, "e") as run:
        assert run.monitor is None
    monkeypatch.setenv("MLTRAIL_SYSTEM_METRICS", "true")
    with quiet_run(store, "e") as run:
        wait_for(lambda: run.monitor.samples >= 1, timeout=10, what="a sample")
    with quiet_run(store, "e", log_system_metrics=False) as off:
        assert off.monitor is None  # the argument wins over the environment
    assert len(_system_points(store, run.id)) >= len(SYSTEM)


def test_a_sampler_fault_is_said_once_and_the_run_goes_on(store, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    import psutil

    def broken(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(psutil, "virtual_memory", broken)
    with quiet_run(store, "e", log_system_metrics=True) as run:
        run.log_metric("loss", 0.5)
        wait_for(lambda: "no /proc here" in caplog.text, timeout=10, what="the fault said")
        time.sleep(0.3)  # several more periods of 0.05 s
        said = [r for r in caplog.records if "no /proc here" in r.getMessage()]
        assert [r.name for r in said] == ["mltrail.tracking.system_metrics"]  # said once, not every period
    assert store.get_run(run.id)["run"]["status"] == "FINISHED"
    assert mltrail.Store(store.root).metric_history([run.id])["key"].tolist() == ["loss"]
