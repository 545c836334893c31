"""torchrun DDP keeps every rank's weights identical; checkpoints resume a killed run exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import ROOT
from trainer.timeliness import modulation


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "trainer.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_two_cpu_ranks_end_with_identical_weights(world_tiny, tmp_path):
    # When the classifier (label teacher, quality teachers and gate, alternating student) trains on 2 gloo ranks
    result = torchrun("train", "classifier", "--data", str(world_tiny), "--out", str(tmp_path / "engines"),
                      "--teacher-epochs", "1", "--quality-epochs", "1", "--student-epochs", "2", "--batch-size", "4",
                      "--loader-workers", "1", "--rank-weights", str(tmp_path / "ranks"),
                      "--checkpoint-dir", str(tmp_path / "checkpoints"))
    assert result.returncode == 0, result.stderr[-3000:]
    # Then both ranks hold the same weights and statistics, tensor for tensor, and rank 0 published once
    ranks = [torch.load(tmp_path / "ranks" / f"rank{r}.pt") for r in (0, 1)]
    assert set(ranks[0]) == {"student", "teacher"}
    for network in ranks[0]:
        assert ranks[0][network].keys() == ranks[1][network].keys()
        differing = [k for k, v in ranks[0][network].items() if not torch.equal(v, ranks[1][network][k])]
        assert differing == [], network
    assert [p.name for p in (tmp_path / "engines" / "classifier").iterdir() if p.name.isdigit()] == ["1"]


def test_the_modulation_coefficient_is_computed_from_the_scores_of_all_ranks():
    strong, weak, labels = torch.tensor([[5.0, 0.0]]), torch.zeros(1, 2), torch.tensor([0])
    alone = modulation.coefficients(weak, strong, labels)
    # another rank's batch where vision is the strong modality balances the scores out
    other = modulation.modality_scores({"visual": strong, "text": weak}, labels)
    summed = modulation.coefficients(weak, strong, labels, all_reduce=lambda t: t + torch.tensor(
        [other["visual"], other["text"]], dtype=torch.float64))
    assert alone["text"] < 0.5 and summed == {"visual": 1.0, "text": 1.0}


def train_timeliness(data: Path, checkpoints: Path, metrics: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "trainer.cli", "train", "timeliness", "--data", str(data), "--eval-data", str(data),
               "--epochs", "3", "--loader-workers", "1", "--no-export", "--checkpoint-dir", str(checkpoints),
               "--metrics-json", str(metrics), *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_killed_run_resumes_after_its_last_epoch_and_ends_like_an_uninterrupted_one(world_tiny, tmp_path):
    # Given an uninterrupted run, and a run killed (SIGKILL) once its first epoch's checkpoint is written
    full = train_timeliness(world_tiny, tmp_path / "a", tmp_path / "full.json")
    killed = train_timeliness(world_tiny, tmp_path / "b", tmp_path / "resumed.json")
    checkpoint = tmp_path / "b" / "timeliness.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not checkpoint.exists():
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    assert full.wait(300) == 0
    epoch_at_kill = torch.load(checkpoint)["epoch"]
    assert epoch_at_kill < 2  # killed before its last epoch
    # When it is run again with --resume
    resumed = train_timeliness(world_tiny, tmp_path / "b", tmp_path / "resumed.json", "--resume")
    output, _ = resumed.communicate(timeout=300)
    # Then it continued after the saved epoch and its held-out metrics and history equal the uninterrupted run's
    assert resumed.returncode == 0, output
    assert f"resuming after epoch {epoch_at_kill}" in output
    assert f"timeliness epoch {epoch_at_kill}:" not in output
    assert json.loads((tmp_path / "resumed.json").read_text()) == json.loads((tmp_path / "full.json").read_text())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device visible to torch")
def test_cuda_ranks_train_with_nccl_and_publish_a_cpu_servable_engine(world_tiny, tmp_path):
    """One rank per visible GPU (nccl when there are two or more); the published graph runs on CPU ORT."""
    ranks = str(min(torch.cuda.device_count(), 2))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", ranks, "-m",
               "trainer.cli", "train", "timeliness", "--data", str(world_tiny), "--eval-data", str(world_tiny),
               "--epochs", "2", "--device", "cuda", "--out", str(tmp_path / "engines"),
               "--rank-weights", str(tmp_path / "ranks"), "--checkpoint-dir", str(tmp_path / "ck")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    weights = [torch.load(path) for path in sorted((tmp_path / "ranks").glob("rank*.pt"))]
    assert all(torch.equal(v, weights[0]["model"][k]) for w in weights for k, v in w["model"].items())
    from stream_tagger.engines.repository import load_engine

    engine = load_engine(tmp_path / "engines" / "timeliness" / "1", "onnxruntime")
    engine.probe()
    engine.close()
