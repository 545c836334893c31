"""Plan cache keys, build-once under a lock, atomic install, profile ranges: all without a GPU."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stream_tagger.engines.runtime import plans

H100 = plans.GpuIdentity("NVIDIA H100 80GB HBM3", (9, 0), "10.13.3.9")


def test_plan_name_follows_design_key():
    # Given / When / Then: <gpu>-sm<cc>-trt<ver>.plan with a file-system-safe GPU name
    assert H100.plan_name == "nvidia-h100-80gb-hbm3-sm90-trt10.13.3.9.plan"


def test_plan_name_sanitises_odd_gpu_names():
    name = plans.plan_name("  Tesla T4 / (PCIe) ", (7, 5), "11.4.0.post1")
    assert name == "tesla-t4-pcie-sm75-trt11.4.0.post1.plan"
    assert "/" not in name and " " not in name


def test_plan_names_differ_by_architecture_and_version():
    names = {
        plans.plan_name("NVIDIA H100", (9, 0), "10.13"),
        plans.plan_name("NVIDIA H100", (9, 0), "11.4"),
        plans.plan_name("NVIDIA H200", (9, 0), "10.13"),
        plans.plan_name("NVIDIA A100", (8, 0), "10.13"),
    }
    assert len(names) == 4


def test_plan_path_is_under_the_version_plans_dir(tmp_path: Path):
    assert plans.plan_path(tmp_path, H100) == tmp_path / "plans" / H100.plan_name


def test_ensure_plan_builds_on_first_use_only(tmp_path: Path):
    calls = []

    def build() -> bytes:
        calls.append(1)
        return b"plan-bytes"

    first = plans.ensure_plan(tmp_path, H100, build)
    second = plans.ensure_plan(tmp_path, H100, build)
    assert first == second and first.read_bytes() == b"plan-bytes"
    assert len(calls) == 1


def test_concurrent_first_use_builds_once(tmp_path: Path):
    # Given four workers that miss the plan at the same time
    calls = []

    def slow_build() -> bytes:
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return b"built"

    threads = [
        threading.Thread(target=plans.ensure_plan, args=(tmp_path, H100, slow_build)) for _ in range(4)
    ]
    # When they all ask for it
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the lock let exactly one build and all see the same file
    assert len(calls) == 1
    assert plans.plan_path(tmp_path, H100).read_bytes() == b"built"


def test_failed_build_leaves_no_plan_and_no_temporary(tmp_path: Path):
    def broken() -> bytes:
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError):
        plans.ensure_plan(tmp_path, H100, broken)
    leftovers = [p.name for p in (tmp_path / "plans").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_install_plan_replaces_a_stale_plan(tmp_path: Path):
    plans.ensure_plan(tmp_path, H100, lambda: b"stale")
    plans.install_plan(tmp_path, H100, lambda: b"fresh")
    assert plans.plan_path(tmp_path, H100).read_bytes() == b"fresh"


def test_batch_axis_range_spans_one_to_max():
    options = plans.BuildOptions(max_batch=32)
    assert plans.axis_range("batch", options) == (1, 16, 32)
    assert plans.axis_range("batch", plans.BuildOptions(max_batch=8, opt_batch=4)) == (1, 4, 8)


def test_other_dynamic_axes_optimise_for_the_observed_size():
    options = plans.BuildOptions(max_other=4096)
    assert plans.axis_range("refs", options, observed=120) == (1, 120, 4096)
    assert plans.axis_range("refs", options, observed=9000) == (1, 9000, 9000)


def test_observed_sizes_read_the_memory_bank(tmp_path: Path):
    np.savez(tmp_path / "memory.npz", refs=np.zeros((37, 5), np.float32), labels=np.zeros(37, np.int64))
    assert plans.observed_sizes(tmp_path) == {"refs": 37}
    assert plans.observed_sizes(tmp_path / "missing") == {}


def test_worker_builds_fp16_only_where_build_engines_validated_it(tmp_path: Path):
    assert plans.default_options(tmp_path).fp16 is False
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / plans.PRECISION_NAME).write_text(json.dumps({"fp16": True}))
    assert plans.default_options(tmp_path).fp16 is True
