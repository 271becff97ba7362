"""A process's CPU time, precise enough for a process that uses 1 % of a core."""

from __future__ import annotations

import sys
import time

import psutil


def process_cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the process, all its threads, ended ones too (an encoder's threads once
    its file is closed). On Linux its CPU-time clock, in ns: clock ticks are too coarse
    for a process using 1 % of a core (a 20 s figure then moves by 10-20 % from run to
    run); elsewhere psutil's ticks."""
    if sys.platform == "linux":
        # The kernel's clock id of a process's CPU time (what glibc's clock_getcpuclockid
        # returns: CPUCLOCK_SCHED of the pid), which Python's time module has no call for.
        try:
            return time.clock_gettime_ns((~process.pid << 3) | 2) / 1e9
        except OSError:  # the process has ended
            pass
    times = process.cpu_times()
    return times.user + times.system
