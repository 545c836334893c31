"""The CPUs a worker may use: affinity capped by a cgroup quota (a Kubernetes CPU limit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stream_tagger.cpus import usable_cpus
from stream_tagger.settings import Settings

AFFINITY = len(os.sched_getaffinity(0))


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, AFFINITY),  # no cgroup files: the affinity mask
        ({"cpu.max": "max 100000\n"}, AFFINITY),  # v2, no limit
        ({"cpu.max": "100000 100000\n"}, 1),  # v2, limits.cpu: 1
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU still gets one process
        ({"cpu.max": f"{150000 * AFFINITY} 100000\n"}, AFFINITY),  # a quota above the affinity
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, AFFINITY),  # v1, none
        ({"cpu.max": "garbage"}, AFFINITY),
    ],
)
def test_usable_cpus_caps_the_affinity_by_the_cgroup_quota(tmp_path: Path, files: dict, expected: int) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    assert usable_cpus(tmp_path) == expected


def test_default_decode_workers_is_one_more_than_the_usable_cpus() -> None:
    assert Settings(_env_file=None).decode_workers == usable_cpus() + 1
