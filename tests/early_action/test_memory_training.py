"""Memory epochs (claims 5 and 6 of the memory-network document) and the GRU's direction."""

import numpy as np
import pytest
import torch

from trainer.checkpoint import Checkpoints
from trainer.datasets.clips import ArraySource, ClipSet
from trainer.distributed import TrainContext
from trainer.early_action.memory import BankConfig, MemorySchedule, bank_from, features_of, train_memory
from trainer.early_action.model import EarlyActionEncoder

CLASSES = ["a", "b", "c"]


def tiny_setup(seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (12, 4, 16, 16, 3), dtype=np.uint8)
    clips = ClipSet(ArraySource(frames), np.arange(12), {"label": np.repeat(np.arange(3), 4)})
    encoder = EarlyActionEncoder(dim=4, hidden=8, classes=3)
    ctx = TrainContext(torch.device("cpu"))
    return encoder, clips, ctx


def run_memory(update: str, until_correct: int, seed: int = 0):
    encoder, clips, ctx = tiny_setup(seed)
    config = BankConfig(clusters_per_class=2)
    bank = bank_from(features_of(encoder, clips, ctx), clips.targets["label"], CLASSES, config)
    before = len(bank.labels)
    schedule = MemorySchedule(epochs=1, update=update, until_correct=until_correct)
    bank, history = train_memory(encoder, clips, bank, config, schedule, ctx,
                                 Checkpoints(None, "test", resume=False, is_main=True))
    return before, bank, history[0]


def test_add_grows_the_bank_by_the_frames_of_the_clips_the_vote_got_right():
    before, bank, record = run_memory("add", until_correct=1)
    right = round(record["right_at_some_try"] * 12)
    assert right > 0
    assert len(bank.labels) == before + 4 * right  # 4 frame vectors per correctly classified clip


def test_no_growth_keeps_the_initial_bank_and_rebuild_replaces_it():
    before, kept, _ = run_memory("none", until_correct=1)
    assert len(kept.labels) == before
    _, rebuilt, _ = run_memory("rebuild", until_correct=1)
    assert len(rebuilt.labels) <= before  # the correct clips' current features only (or a whole class kept)


def test_a_batch_is_retrained_until_its_clips_are_right_or_the_cap():
    _, _, once = run_memory("none", until_correct=1)
    _, _, capped = run_memory("none", until_correct=4)
    assert once["steps"] == 1 and once["mean_tries"] == 1.0  # 12 clips: one batch, one step
    # random frames: the vote gets some clip wrong, so the batch is tried again, never past the cap
    assert 1 < capped["steps"] <= 4 and capped["mean_tries"] == capped["steps"]
    assert capped["right_at_some_try"] >= once["right_at_some_try"]


@pytest.mark.parametrize("gru, causal", [("uni", True), ("bi", False)])
def test_a_unidirectional_encoder_sees_only_the_frames_before(gru, causal):
    torch.manual_seed(0)
    encoder = EarlyActionEncoder(dim=4, hidden=8, classes=3, gru=gru).eval()
    frames = torch.randint(0, 256, (1, 6, 16, 16, 3), dtype=torch.uint8)
    changed = frames.clone()
    changed[:, 4:] = 255 - changed[:, 4:]  # only frames 4 and 5 differ
    with torch.no_grad():
        a, b = encoder(frames), encoder(changed)
    assert torch.equal(a[:, :4], b[:, :4]) == causal
    assert not torch.equal(a[:, 4:], b[:, 4:])


def test_ramp_weights_grow_with_the_frame_and_keep_the_loss_scale():
    from trainer.early_action.train import frame_weights

    ramp, uniform = frame_weights(4, "ramp", "cpu"), frame_weights(4, "uniform", "cpu")
    torch.testing.assert_close(ramp, torch.tensor([0.4, 0.8, 1.2, 1.6]))
    torch.testing.assert_close(uniform, torch.ones(4))
    with pytest.raises(ValueError, match="unknown frame weights"):
        frame_weights(4, "last", "cpu")


def test_the_auxiliary_stage_trains_with_either_frame_weighting():
    import argparse

    from trainer.early_action.train import train_auxiliary

    losses = {}
    for kind in ("uniform", "ramp"):
        encoder, clips, ctx = tiny_setup()
        args = argparse.Namespace(aux_epochs=3, aux_frame_weights=kind, seed=0)
        history = train_auxiliary(encoder, clips, args, ctx, Checkpoints(None, "test", resume=False, is_main=True))
        losses[kind] = [epoch["loss"] for epoch in history]
    # the same start, different objectives: the first epoch's losses differ, and each one falls
    assert losses["uniform"][0] != losses["ramp"][0]
    assert all(run[-1] < run[0] for run in losses.values())
