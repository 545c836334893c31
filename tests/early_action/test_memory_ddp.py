"""Memory epochs under torchrun: retrying a batch until it is right keeps every rank in step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from video_world.dataset import generate_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_two_ranks_retry_in_step_and_end_with_identical_encoders(tmp_path):
    # Given a tiny long-clip dataset of world v2
    data = tmp_path / "data"
    generate_dataset(data, clips=12, seed=3, workers=1, world="v2", width=32, height=32, seconds=6, fps=12)
    # When the early-action predictor trains on 2 gloo ranks with up to 3 tries per batch, adding to the memory
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
               "trainer.cli", "train", "early_action", "--data", str(data), "--eval-data", str(data),
               "--out", str(tmp_path / "engines"), "--aux-epochs", "1", "--memory-epochs", "2", "--until-correct", "3",
               "--memory-update", "add", "--gru", "uni", "--frames", "6", "--size", "32", "--window-fraction", "0.1",
               "--max-seconds", "0.6", "--loader-workers", "0", "--rank-weights", str(tmp_path / "ranks"),
               "--checkpoint-dir", str(tmp_path / "checkpoints"), "--no-export"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    # Then both ranks took the same steps: their encoders are equal tensor for tensor
    ranks = [torch.load(tmp_path / "ranks" / f"rank{r}.pt") for r in (0, 1)]
    encoder = ranks[0]["encoder"]
    assert [k for k, v in encoder.items() if not torch.equal(v, ranks[1]["encoder"][k])] == []
    # and the batches were retried (one batch per rank and epoch; more steps than batches)
    epochs = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("memory epoch")]
    assert len(epochs) == 2 and any(int(line.split("steps ")[1].split()[0]) > 1 for line in epochs)
