"""Repository-wide pytest settings: patience and torch threads for busy machines."""

from __future__ import annotations

import os
import time

#: Seconds nbval waits between two output messages of a cell. nbval hard-codes 5; on a loaded
#: 2-core CI machine the kernel can take longer than that to flush a chapter's progress-bar
#: updates after a long cell, which failed a correct cell ("Timeout of 5 seconds exceeded
#: waiting for output"). A cell that really hangs is still stopped by --nbval-cell-timeout.
NBVAL_OUTPUT_TIMEOUT = 60


def _cores() -> list[int]:
    """The CPUs this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def _idle_cores(seconds: float = 0.5) -> float | None:
    """How many of this process's CPUs sat idle over ``seconds``, from Linux's /proc/stat (None elsewhere)."""
    names = {f"cpu{n}" for n in _cores()}

    def totals() -> tuple[int, int]:
        every, idle = 0, 0
        with open("/proc/stat") as stat:
            for line in stat:
                name, *ticks = line.split()
                if name in names:  # user nice system idle iowait irq softirq steal (guest time is inside user)
                    t = [int(x) for x in ticks[:8]]
                    every, idle = every + sum(t), idle + t[3] + t[4]
        return every, idle

    try:
        every0, idle0 = totals()
        time.sleep(seconds)
        every1, idle1 = totals()
    except (OSError, ValueError, IndexError):
        return None
    return len(names) * (idle1 - idle0) / max(every1 - every0, 1)


def torch_threads_for_this_machine() -> int | None:
    """One torch thread per idle CPU when other programs keep some busy, else None (torch's default).

    torch's worker threads spin while they wait for each other; beside a program that holds a core,
    a thread left without one makes every step wait (measured on the 2-core test machine: a LeNet-5
    epoch 3 to 4x slower with 2 threads, 1.1x with 1; see book/how-to-use.md, "On a busy machine").
    """
    idle = _idle_cores()
    if idle is None:
        return None
    threads = max(1, int(idle + 0.5))  # idle CPUs, rounded
    return threads if threads < len(_cores()) else None


def _choose_torch_threads() -> int | None:
    """Set OMP_NUM_THREADS for a busy machine unless the user set it; the number set, or None."""
    if "OMP_NUM_THREADS" in os.environ:
        return None
    threads = torch_threads_for_this_machine()
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


# Now, while pytest loads this file: before tests/conftest.py imports torch (whose OpenMP library
# reads the variable when it loads) and before any kernel, papermill run or torchrun starts (they
# inherit it).
THREADS_SET = _choose_torch_threads()


def pytest_report_header(config):
    if THREADS_SET is not None:
        return (
            f"other programs keep cores busy: OMP_NUM_THREADS={THREADS_SET} for every kernel and process "
            "of this run (set OMP_NUM_THREADS yourself to choose)"
        )
    return None


def pytest_collection_modifyitems(config, items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: no notebook tests to adjust
        return
    for item in items:
        if isinstance(item, IPyNbCell):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT
