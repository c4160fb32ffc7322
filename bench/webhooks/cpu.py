"""CPU time of the processes in a measurement, from ``/proc`` (Linux only).

A throughput ratio says how much slower one endpoint is; CPU per delivery says
where the time goes: the load client, the server processes, PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and all its live descendants."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += _cpu_seconds(current)
        stack += _children(current)
    return total


def postgres_cpu() -> float:
    """CPU seconds of every live ``postgres`` process on this machine."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += _cpu_seconds(int(entry.name))
        except OSError:
            continue
    return total
