"""``train quality`` end to end through the CLI: a fragments branch trained, attached and published."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from stream_tagger.engines.manifest import EngineManifest, FragmentsFeed
from stream_tagger.engines.repository import load_engine
from stream_tagger.engines.tiny import write_tiny_engine
from trainer.cli import main
from trainer.quality.train import add_arguments, fragment_policy
from video_world.ladder import Recipe, apply_recipe, write_pristine
from video_world.texture import natural_texture


def _graded_dataset(root, clips: int = 8) -> None:
    """Textured clips encoded pristine (excellent) or starved (poor), in the documented dataset format."""
    (root / "clips").mkdir(parents=True)
    rows = []
    for k in range(clips):
        rng = np.random.default_rng(k)
        texture = natural_texture(rng, 140, 200, 16.0) + rng.uniform(60, 190)
        frames = np.stack([np.clip(texture[t:t + 112, t:t + 160], 0, 255) for t in range(12)]).astype(np.uint8)
        pristine = write_pristine(frames, root / f"{k}.yuv", fps=25)
        grade = "excellent" if k % 2 == 0 else "poor"
        recipe = Recipe("h264", crf=12) if grade == "excellent" else Recipe("h264", crf=51, rescale=3.0)
        apply_recipe(recipe, pristine, root / "clips" / f"c{k}.mp4", seed=k)
        (root / f"{k}.yuv").unlink()
        rows.append({"clip_id": f"c{k}", "file": f"clips/c{k}.mp4", "quality": grade})
    (root / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (root / "taxonomy.json").write_text(json.dumps({"quality_grades": ["excellent", "good", "fair", "poor"]}))


def test_train_quality_publishes_the_base_classifier_with_a_fragments_branch(tmp_path):
    # Given graded clips and an engine repository holding a base classifier
    _graded_dataset(tmp_path / "data")
    base = write_tiny_engine(tmp_path / "engines", "classifier")

    # When the quality branch is trained (a tiny budget) and published through the CLI
    code = main(["train", "quality", "--data", str(tmp_path / "data"), "--eval-data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "engines"), "--grid", "4", "--patch", "16", "--fragment-frames", "2",
                 "--draws", "2", "--teacher-epochs", "1", "--gate-epochs", "1", "--student-epochs", "2",
                 "--batch-size", "4", "--metrics-json", str(tmp_path / "metrics.json")])

    # Then a new classifier version takes frames and fragments, keeps the base's labels and serving,
    # records its teachers, and serves probabilities
    assert code == 0
    manifest = EngineManifest.load(tmp_path / "engines" / "classifier" / "2")
    base_manifest = EngineManifest.load(base)
    feeds = {spec.name: spec.feed for spec in manifest.inputs}
    assert isinstance(feeds["fragments"], FragmentsFeed) and feeds["fragments"].fragments.size == (64, 64)
    assert feeds["frames"] == next(s.feed for s in base_manifest.inputs if s.name == "frames")
    assert manifest.labels == {**base_manifest.labels, "quality": ["excellent", "good", "fair", "poor"]}
    assert manifest.training.base == base_manifest.ref
    assert len(manifest.metrics["quality"]["selected_teachers"]) >= 2
    assert json.loads((tmp_path / "metrics.json").read_text())["eval_clips"] == 8
    engine = load_engine(tmp_path / "engines" / "classifier" / "2", "onnxruntime", threads=1)
    try:
        probs = engine.probe()["quality_probs"]
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    finally:
        engine.close()

    # and the classifier evaluation feeds it both inputs
    assert main(["evaluate", "classifier", "--data", str(tmp_path / "data"), "--engine",
                 str(tmp_path / "engines" / "classifier" / "2"), "--json", str(tmp_path / "eval.json")]) == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["clips"] == 8 and 0.0 <= evaluated["quality_accuracy"] <= 1.0


def test_attach_quality_carries_a_branch_onto_a_retrained_base(tmp_path):
    # Given a fragments classifier (the tiny one: its quality reads the fragments) and a newer plain base
    from stream_tagger.engines.tiny import FRAGMENTS

    carrier = write_tiny_engine(tmp_path, "classifier", version=1, fragments=FRAGMENTS, seed=1)
    base = write_tiny_engine(tmp_path, "classifier", version=2, seed=2)

    # When its branch is attached to the new base
    assert main(["attach-quality", "--from", str(carrier), "--out", str(tmp_path)]) == 0

    # Then the new version computes quality as the carrier did, category and tags as the base does
    merged = tmp_path / "classifier" / "3"
    manifest = EngineManifest.load(merged)
    assert manifest.training.base == EngineManifest.load(base).ref
    assert manifest.metrics["quality_branch_from"] == EngineManifest.load(carrier).ref
    rng = np.random.default_rng(0)
    engines = {name: load_engine(path, "onnxruntime", threads=1) for name, path in
               (("carrier", carrier), ("base", base), ("merged", merged))}
    try:
        frames = {p: rng.integers(0, 256, (2, p.frames, p.height, p.width, 3), dtype=np.uint8)
                  for p in engines["merged"].sampling_policies}
        out = {name: engine.infer(frames, ["", ""]) for name, engine in engines.items()}
    finally:
        for engine in engines.values():
            engine.close()
    np.testing.assert_allclose(out["merged"]["quality_probs"], out["carrier"]["quality_probs"], atol=1e-6)
    np.testing.assert_allclose(out["merged"]["category_probs"], out["base"]["category_probs"], atol=1e-6)


def test_fragments_are_decoded_as_the_base_frames_unless_the_flag_says_otherwise():
    # Given the committed classifier/3, whose frames input may skip the deblocking filter
    base = Path(__file__).resolve().parents[2] / "engines" / "classifier" / "3"
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def policy(*flags):
        return fragment_policy(parser.parse_args(["--data", "unused", *flags]), base)

    # Then by default the fragments are cut from the same pass (needed frames, not deblocked),
    # and the flag can ask for deblocked pictures or confirm the base's choice
    assert (policy().decode, policy().deblock) == ("needed", False)
    assert policy("--fragment-deblock", "on").deblock is True
    assert policy("--fragment-deblock", "off").deblock is False
    # and without a base the decoder's defaults hold
    assert fragment_policy(parser.parse_args(["--data", "unused"]), None).deblock is True


def test_balanced_weights_give_each_grade_the_same_total_weight():
    from trainer.quality.train import balanced_weights

    labels = np.array([0] * 10 + [1] * 30 + [2] * 60)
    weights = balanced_weights(labels, classes=4).numpy()
    totals = np.bincount(labels, minlength=4) * weights
    np.testing.assert_allclose(totals[:3], labels.size / 4, rtol=1e-6)
    assert weights[3] == 0.0  # a grade no training clip carries


def test_quality_ablation_rows_train_the_candidate_teachers_once_per_seed(tmp_path):
    from trainer.ablation.quality import CANDIDATES

    # Given graded clips
    _graded_dataset(tmp_path / "data")
    out = tmp_path / "ablation"

    # When two rows that differ only in the selection rule run for one seed (a tiny budget)
    assert main(["ablate", "quality", "--data", str(tmp_path / "data"), "--eval-data", str(tmp_path / "data"),
                 "--out", str(out), "--seeds", "1", "--rows", "gated_selected", "gated_all",
                 "--teacher-epochs", "1", "--student-epochs", "1",
                 "--extra", "--grid 4 --patch 16 --fragment-frames 2 --draws 2 --gate-epochs 1 --batch-size 4"]) == 0

    # Then the first row trained every candidate's stages, and the second took all of them from it
    first_stages = {p.stem for p in (out / ".checkpoints" / "gated_selected" / "seed1").glob("*.pt")}
    assert {stage.replace("/", "__") for stage in CANDIDATES} <= first_stages
    first, second = (json.loads((out / row / "seed1.json").read_text()) for row in ("gated_selected", "gated_all"))
    assert second["ablation"]["shared_stages"] == list(CANDIDATES)
    # so both rows judged the same teachers: identical candidate accuracies, different choices allowed
    def accuracies(report):
        return [(c["name"], c["teacher_accuracy"], c["updated_accuracy"]) for c in report["quality_candidates"]]

    assert accuracies(second) == accuracies(first)
    assert all(c["chosen"] for c in second["quality_candidates"])  # selection off keeps every candidate
