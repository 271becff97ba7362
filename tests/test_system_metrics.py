"""CPU, memory, storage write rate and the low-disk guard, with injected readings."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from engine.system.cpu import CpuMonitor, cpu_temperature
from engine.system.disk_guard import DiskGuard, LowDiskError
from engine.system.memory import memory_info
from engine.system.storage import StorageMonitor, nearest_existing

Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
Temp = namedtuple("Temp", "label current high critical")
Usage = namedtuple("Usage", "total used free")
Memory = namedtuple("Memory", "total available")
GB = 10**9


def times(busy: float, idle: float, guest: float = 0.0) -> Times:
    return Times(user=busy, nice=0, system=0, idle=idle, iowait=0, irq=0, softirq=0, steal=0,
                 guest=guest, guest_nice=0)


class Sequence:
    """Returns the next item of a list on each call."""

    def __init__(self, *items):
        self.items = list(items)

    def __call__(self):
        return self.items.pop(0)


def test_cpu_usage_is_the_delta_between_samples_not_since_boot() -> None:
    counters = Sequence(
        [times(busy=900, idle=100), times(busy=100, idle=900)],  # since boot: 50 % overall
        [times(busy=950, idle=150), times(busy=200, idle=900, guest=40)],  # 50 %, 100 %
        [times(busy=950, idle=250), times(busy=200, idle=1000)],  # both idle
    )
    cpu = CpuMonitor(cpu_times=counters, temperature=lambda: 51.5)
    first = cpu.sample()
    assert first["per_core_percent"] == [50.0, 100.0]
    assert first["usage_percent"] == 75.0
    assert first["temperature_c"] == 51.5
    second = cpu.sample()
    assert second["per_core_percent"] == [0.0, 0.0] and second["usage_percent"] == 0.0


def test_cpu_samples_without_elapsed_time_keep_the_last_figures() -> None:
    same = [times(busy=10, idle=10)]
    cpu = CpuMonitor(cpu_times=Sequence(same, [times(busy=20, idle=10)],
                                        [times(busy=20, idle=10)]), temperature=lambda: None)
    assert cpu.sample()["usage_percent"] == 100.0
    assert cpu.sample()["usage_percent"] == 100.0


def test_cpu_monitor_on_this_machine() -> None:
    cpu = CpuMonitor()
    sum(range(200_000))
    sample = cpu.sample()
    assert 0.0 <= sample["usage_percent"] <= 100.0
    assert len(sample["per_core_percent"]) >= 1
    assert sample["temperature_c"] is None or isinstance(sample["temperature_c"], float)


def test_cpu_temperature_where_the_os_has_it() -> None:
    assert cpu_temperature(lambda: {"coretemp": [Temp("Package id 0", 64.0, 80, 100)]}) == 64.0
    assert cpu_temperature(lambda: {"nvme": [Temp("Composite", 40.0, 80, 90)]}) is None
    assert cpu_temperature(dict) is None

    def broken() -> dict:
        raise OSError("sysfs went away")

    assert cpu_temperature(broken) is None


def test_memory_used_is_what_is_not_available() -> None:
    memory = memory_info(lambda: Memory(total=8 * GB, available=2 * GB))
    assert memory == {"total_bytes": 8 * GB, "used_bytes": 6 * GB,
                      "available_bytes": 2 * GB, "used_percent": 75.0}
    assert memory_info()["total_bytes"] > 0


class Disk:
    """disk_usage(path) with free space the test controls, and a clock."""

    def __init__(self, free: int, total: int = 100 * GB) -> None:
        self.free, self.total, self.now = free, total, 0.0
        self.paths: list[Path] = []

    def usage(self, path: Path) -> Usage:
        self.paths.append(path)
        return Usage(self.total, self.total - self.free, self.free)

    def clock(self) -> float:
        return self.now


def test_write_rate_and_time_to_full_from_the_fall_of_free_space(tmp_path: Path) -> None:
    disk = Disk(free=10 * GB)
    storage = StorageMonitor(window_s=30, disk_usage=disk.usage, clock=disk.clock)
    first = storage.sample(tmp_path)
    assert first["write_rate_bps"] == 0.0 and first["seconds_to_full"] is None
    assert first["free_bytes"] == 10 * GB and first["used_bytes"] == 90 * GB
    for _ in range(10):
        disk.now += 1
        disk.free -= 50_000_000  # 50 MB/s
        sample = storage.sample(tmp_path)
    assert sample["write_rate_bps"] == pytest.approx(50e6)
    assert sample["seconds_to_full"] == pytest.approx(9.5 * GB / 50e6)

    for _ in range(40):  # writing stops; the window forgets the old fall
        disk.now += 1
        sample = storage.sample(tmp_path)
    assert sample["write_rate_bps"] == 0.0 and sample["seconds_to_full"] is None


def test_freeing_space_is_not_a_negative_write_rate(tmp_path: Path) -> None:
    disk = Disk(free=10 * GB)
    storage = StorageMonitor(disk_usage=disk.usage, clock=disk.clock)
    storage.sample(tmp_path)
    disk.now, disk.free = 5.0, 12 * GB
    sample = storage.sample(tmp_path)
    assert sample["write_rate_bps"] == 0.0 and sample["seconds_to_full"] is None


def test_another_folder_starts_a_new_history(tmp_path: Path) -> None:
    disk = Disk(free=10 * GB)
    storage = StorageMonitor(disk_usage=disk.usage, clock=disk.clock)
    storage.sample(tmp_path / "a")
    disk.now, disk.free = 1.0, 9 * GB
    assert storage.sample(tmp_path / "b")["write_rate_bps"] == 0.0


def test_a_folder_not_created_yet_is_measured_on_its_disk(tmp_path: Path) -> None:
    assert nearest_existing(tmp_path / "not" / "yet") == tmp_path
    real = StorageMonitor().sample(tmp_path / "not" / "yet")
    assert real["total_bytes"] > 0 and real["path"] == str(tmp_path / "not" / "yet")


def guard(free: int) -> DiskGuard:
    return DiskGuard(warn_below_bytes=5 * GB, stop_below_bytes=1 * GB, free_bytes=lambda p: free)


@pytest.mark.parametrize(("free", "level"), [(20 * GB, "ok"), (5 * GB, "ok"),
                                             (5 * GB - 1, "warning"), (1 * GB, "warning"),
                                             (1 * GB - 1, "danger"), (0, "danger")])
def test_disk_levels(free: int, level: str, tmp_path: Path) -> None:
    assert guard(free).level(tmp_path) == level
    assert guard(free).level_of(free) == level


def test_start_is_refused_under_the_stop_threshold_naming_folder_and_free_space() -> None:
    folder = Path("/media/rig/recordings")
    guard(3 * GB).check_can_start(folder)  # a warning does not refuse
    with pytest.raises(LowDiskError) as refused:
        guard(int(0.42 * GB)).check_can_start(folder)
    assert str(folder) in str(refused.value) and "0.42 GB" in str(refused.value)


def test_should_stop_gives_a_reason_only_under_the_stop_threshold(tmp_path: Path) -> None:
    assert guard(2 * GB).should_stop(tmp_path) is None
    reason = guard(int(0.9 * GB)).should_stop(tmp_path)
    assert reason is not None and str(tmp_path) in reason and "0.90 GB" in reason


def test_unreadable_free_space(tmp_path: Path) -> None:
    def broken(path: Path) -> int:
        raise OSError(5, "Input/output error")

    unreadable = DiskGuard(free_bytes=broken)
    assert unreadable.level(tmp_path) == "danger"
    assert unreadable.should_stop(tmp_path) is None
    with pytest.raises(LowDiskError, match="cannot read the free space"):
        unreadable.check_can_start(tmp_path)


def test_thresholds_are_settings_and_checked() -> None:
    custom = DiskGuard(warn_below_bytes=50 * GB, stop_below_bytes=10 * GB,
                       free_bytes=lambda p: 20 * GB)
    assert custom.level(Path("/")) == "warning"
    with pytest.raises(ValueError):
        DiskGuard(warn_below_bytes=1 * GB, stop_below_bytes=5 * GB)


def test_default_guard_reads_the_real_disk(tmp_path: Path) -> None:
    assert DiskGuard().level(tmp_path / "new") in ("ok", "warning", "danger")
