"""A run's system metrics: CPU, memory, disk, network, and NVIDIA GPUs when there are
any, sampled in a background thread every ``MLTRAIL_SYSTEM_METRICS_SECONDS`` (10) and
logged as ``system/...`` metrics with the sample's number as the step, under MLflow's
names (2.8+), so dashboards and habits carry over:

    system/cpu_utilization_percentage        system/system_memory_usage_megabytes
    system/system_memory_usage_percentage    system/disk_usage_percentage
    system/disk_usage_megabytes              system/disk_available_megabytes
    system/network_receive_megabytes         system/network_transmit_megabytes  (since the run began)
    system/gpu_<i>_utilization_percentage    system/gpu_<i>_memory_usage_percentage
    system/gpu_<i>_memory_usage_megabytes    system/gpu_<i>_temperature_celsius
    system/gpu_<i>_power_usage_watts

psutil reads the system; NVIDIA's NVML bindings (``pip install mltrail[gpu]``) the GPUs:
without them, or without a GPU, there are no GPU metrics and nothing fails. The training
loop pays nothing for it but the GIL for a few microseconds every period.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..config import SYSTEM_METRICS, SYSTEM_METRICS_SECONDS
from ..errors import RunStateError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .run import Run

MB = 1024 * 1024
PREFIX = "system/"  # every system metric's key starts so (MLflow's names): the Run page charts them apart


def wanted(asked: bool | None) -> bool:
    """``start_run(log_system_metrics=...)``, else ``$MLTRAIL_SYSTEM_METRICS`` (1, true, yes)."""
    if asked is not None:
        return asked
    return SYSTEM_METRICS.get().strip().lower() in ("1", "true", "yes", "on")


class Gpus:
    """The machine's NVIDIA GPUs through NVML (None from :meth:`open` when there are none)."""

    def __init__(self, nvml: ModuleType, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def open(cls) -> Gpus | None:
        try:
            import pynvml as nvml  # nvidia-ml-py
        except ImportError:
            return None
        try:
            nvml.nvmlInit()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001 - NVMLError when the driver or the GPU is absent
            return None
        return cls(nvml, handles) if handles else None

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        nvml = self.nvml
        for i, handle in enumerate(self.handles):
            reads = {
                "utilization_percentage": lambda h: nvml.nvmlDeviceGetUtilizationRates(h).gpu,
                "memory_usage_megabytes": lambda h: nvml.nvmlDeviceGetMemoryInfo(h).used / MB,
                "memory_usage_percentage": lambda h: 100 * nvml.nvmlDeviceGetMemoryInfo(h).used
                / nvml.nvmlDeviceGetMemoryInfo(h).total,
                "temperature_celsius": lambda h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
                "power_usage_watts": lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000,  # milliwatts
            }
            for name, read in reads.items():
                try:
                    values[f"{PREFIX}gpu_{i}_{name}"] = float(read(handle))
                except Exception:  # noqa: BLE001 - a GPU that does not report one reading (NVMLError)
                    continue
        return values


class SystemMonitor:
    """Samples the system into a run until :meth:`stop` (the run's end calls it)."""

    def __init__(self, run: Run, disk: Path, interval: float | None = None) -> None:
        self.run = run
        self.disk = disk
        self.interval = SYSTEM_METRICS_SECONDS.get(interval)
        self.gpus = Gpus.open()
        self.samples = 0
        import psutil  # here, not at the top: a run without system metrics never loads it

        self._psutil = psutil
        self._network_start = psutil.net_io_counters()
        psutil.cpu_percent(interval=None)  # the first reading starts the measurement window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"mltrail-system-{run.id[:8]}", daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, float]:
        psutil = self._psutil
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.disk))
        network = psutil.net_io_counters()
        values = {
            f"{PREFIX}cpu_utilization_percentage": psutil.cpu_percent(interval=None),
            f"{PREFIX}system_memory_usage_megabytes": (memory.total - memory.available) / MB,
            f"{PREFIX}system_memory_usage_percentage": memory.percent,
            f"{PREFIX}disk_usage_percentage": disk.percent,
            f"{PREFIX}disk_usage_megabytes": disk.used / MB,
            f"{PREFIX}disk_available_megabytes": disk.free / MB,
            f"{PREFIX}network_receive_megabytes": (network.bytes_recv - self._network_start.bytes_recv) / MB,
            f"{PREFIX}network_transmit_megabytes": (network.bytes_sent - self._network_start.bytes_sent) / MB,
        }
        if self.gpus is not None:
            values.update(self.gpus.sample())
        return {k: float(v) for k, v in values.items()}

    def _loop(self) -> None:
        failed = False
        while not self._stop.wait(self.interval):
            try:
                self.run.log_metrics(self.sample(), step=self.samples)
                self.samples += 1
            except RunStateError:  # the run ended between two samples
                return
            except Exception as exc:  # noqa: BLE001 - a sampler fault never reaches the training loop
                if not failed:
                    logger.warning("mltrail: system metrics of run %s: %s: %s", self.run.id, type(exc).__name__, exc)
                failed = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
