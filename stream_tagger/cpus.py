"""How many CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota.

``os.cpu_count()`` reports the node's CPUs; in a Kubernetes pod with ``limits.cpu: 2`` on a 64-core
node that would start 65 decode processes that the quota then throttles. The quota is read from
cgroup v2's ``cpu.max`` (or v1's ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), rounded up. These are
two kernel files: not worth a dependency (loky has the same logic inside a process-pool library).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup_root)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


def _cgroup_quota(root: Path) -> float | None:
    """CPUs the cgroup's quota allows per period, None without a quota (or without a cgroup)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
