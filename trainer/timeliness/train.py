"""``stream-tagger-train train timeliness``: train the multimodal timeliness model and export an engine version."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from stream_tagger.engines.manifest import MODEL_NAME, FramesFeed, Preprocessing, TitleFeed, TrainingRecord
from stream_tagger.engines.repository import publish_version
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.text import HashedTokenizer
from trainer.data import load_dataset, load_frames
from trainer.export import check_parity, command_line, dataset_hash, export_onnx
from trainer.timeliness import modulation
from trainer.timeliness.evaluate import evidence_breakdown
from trainer.timeliness.model import MEAN, STD, TimelinessModel
from video_world.labels import TIMELINESS_CLASSES, TIMELINESS_TTL_HOURS

POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)
BATCH = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="training dataset folder")
    parser.add_argument("--eval-data", type=Path, required=True, help="held-out dataset folder")
    parser.add_argument("--out", type=Path, default=Path("engines"), help="engine repository root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--no-modulation", action="store_true", help="turn gradient modulation off")
    parser.add_argument("--alpha", type=float, default=modulation.DEFAULT_ALPHA, help="modulation strength")
    parser.add_argument("--heads", choices=("fusion", "all"), default="all",
                        help="all: each encoder also trained by its own head; fusion: fusion loss only")
    parser.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    parser.add_argument("--no-export", action="store_true", help="train and evaluate only (ablations)")
    parser.add_argument("--metrics-json", type=Path, help="also write the held-out metrics here (ablations)")


def encode_split(directory: Path, tokenizer: HashedTokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = load_dataset(directory)
    frames = load_frames(directory, POLICY, progress=True)
    ids = tokenizer.encode_batch([row["title"] for row in rows])
    labels = np.asarray([TIMELINESS_CLASSES.index(row["timeliness"]) for row in rows], np.int64)
    return frames, ids, labels


def train_epoch(model: TimelinessModel, optimizer, data, args, rng: np.random.Generator) -> dict[str, float]:
    frames, ids, labels = data
    model.train()
    logged = {"visual": [], "text": [], "loss": []}
    order = rng.permutation(len(labels))
    for start in range(0, len(labels), BATCH):
        index = np.sort(order[start:start + BATCH])  # sorted: faster reads from the memory-mapped cache
        x, t, y = torch.from_numpy(np.array(frames[index])), torch.from_numpy(ids[index]), torch.from_numpy(labels[index])
        fusion, visual, text = model.logits(x, t, detach_unimodal=args.heads == "fusion")
        loss = F.cross_entropy(fusion, y) + F.cross_entropy(visual, y) + F.cross_entropy(text, y)
        optimizer.zero_grad()
        loss.backward()
        coeffs = {"visual": 1.0, "text": 1.0}
        if not args.no_modulation:
            coeffs = modulation.coefficients(visual, text, y, args.alpha)
            modulation.scale_gradients(model.encoder_parameters(), coeffs)
        optimizer.step()
        for name in ("visual", "text"):
            logged[name].append(coeffs[name])
        logged["loss"].append(loss.item())
    return {name: float(np.mean(values)) for name, values in logged.items()}


def predict(model: TimelinessModel, frames: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    model.eval()
    out = {"fusion": [], "visual": [], "text": []}
    with torch.no_grad():
        for start in range(0, len(ids), 128):
            probs = model(torch.from_numpy(np.array(frames[start:start + 128])), torch.from_numpy(ids[start:start + 128]))
            for name, value in zip(out, probs):
                out[name].append(value.numpy())
    return {name: np.concatenate(values).argmax(1) for name, values in out.items()}


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    tokenizer = HashedTokenizer()
    train, held_out = encode_split(args.data, tokenizer), encode_split(args.eval_data, tokenizer)
    model = TimelinessModel(tokenizer.buckets, len(TIMELINESS_CLASSES))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    started, history = time.time(), []
    for epoch in range(args.epochs):
        logged = train_epoch(model, optimizer, train, args, rng)
        schedule.step()
        history.append({"epoch": epoch, **{k: round(v, 4) for k, v in logged.items()}})
        print(f"epoch {epoch:2d} loss {logged['loss']:.3f} coeff visual {logged['visual']:.3f} text {logged['text']:.3f}", flush=True)
    predicted = predict(model, held_out[0], held_out[1])
    metrics = {f"{name}_accuracy": float((value == held_out[2]).mean()) for name, value in predicted.items()}
    print("held-out", {k: round(v, 4) for k, v in metrics.items()}, flush=True)
    if args.metrics_json:
        by_evidence = evidence_breakdown(load_dataset(args.eval_data), held_out[2], predicted["fusion"])
        report = {**metrics, "fusion_by_evidence": by_evidence, "coefficient_log": history}
        args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_json.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_export:
        export(model, tokenizer, args, metrics, history, time.time() - started, (train, held_out))
    return 0


def export(model, tokenizer, args, metrics, history, seconds, splits) -> Path:
    (train, held_out) = splits
    feeds = {"frames": np.asarray(held_out[0][:4]), "title_ids": held_out[1][:4]}
    with tempfile.TemporaryDirectory() as scratch:
        model_path = Path(scratch) / MODEL_NAME
        export_onnx(model, feeds, ["timeliness_probs", "visual_probs", "text_probs"], model_path)
        metrics["parity_max_abs"] = check_parity(model, model_path, feeds)
        training = TrainingRecord(command=command_line(), seed=args.seed, data_hash=dataset_hash(args.data),
                                  data_clips=len(train[2]), seconds=round(seconds, 1), modulation=not args.no_modulation,
                                  alpha=args.alpha, heads=args.heads, coefficient_log=history)
        version_dir = publish_version(
            args.out, "timeliness", {MODEL_NAME: model_path},
            feeds={"frames": FramesFeed(sampling=POLICY), "title_ids": TitleFeed(tokenizer=tokenizer.config())},
            labels={"timeliness": list(TIMELINESS_CLASSES)},
            preprocessing=Preprocessing(mean=(MEAN,) * 3, std=(STD,) * 3),
            serving={"ttl_hours": dict(TIMELINESS_TTL_HOURS)},
            training=training, metrics={"eval_data_hash": dataset_hash(args.eval_data), **metrics},
            version=args.version,
        )
    print(f"wrote {version_dir}", flush=True)
    return version_dir
