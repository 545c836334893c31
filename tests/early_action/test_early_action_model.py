"""The exported early-action graph votes against the bank given as input, like the numpy twin, under ORT."""

import numpy as np
import onnxruntime as ort
import torch

from stream_tagger.engines.memory_bank import vote
from trainer.early_action.model import EarlyActionEncoder, MemoryVoteModel, memory_logits
from trainer.export import check_parity, export_onnx


def test_surrogate_prefers_the_class_of_the_nearest_reference():
    refs = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    logits = memory_logits(torch.tensor([[[3.5, 0.0]]]), refs, torch.tensor([0, 1]), classes=2, metric="euclidean")
    assert logits.argmax(-1).item() == 1


def test_tiny_graph_vote_matches_numpy_and_a_new_bank_needs_no_reexport(tmp_path):
    # Given a tiny exported model
    torch.manual_seed(0)
    model = MemoryVoteModel(EarlyActionEncoder(dim=4, hidden=8, classes=3), classes=3).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 8, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        feats = model.encoder(torch.from_numpy(frames)).numpy()
    feeds = {"frames": frames, "memory_refs": feats[0, :3].copy(), "memory_labels": np.array([0, 1, 2], np.int64)}
    path = tmp_path / "model.onnx"
    export_onnx(model, feeds, ["action_probs", "frame_votes", "features"], path,
                shared_inputs=("memory_refs", "memory_labels"))
    assert check_parity(model, path, feeds) < 1e-4
    # When the bank changes size (a bigger memory) and is fed to the same graph
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    refs = np.concatenate([feats[1, :5], feats[0, :2]])
    labels = np.array([2, 2, 1, 1, 0, 0, 1], np.int64)
    shares, votes, features = session.run(None, {"frames": frames, "memory_refs": refs, "memory_labels": labels})
    # Then the in-graph vote equals the numpy vote over the returned features
    want_votes, want_shares = vote(features, refs, labels, classes=3)
    assert votes.dtype == np.int64 and votes.shape == (2, 8)
    assert np.array_equal(votes, want_votes) and np.allclose(shares, want_shares)
