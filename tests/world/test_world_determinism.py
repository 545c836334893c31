from __future__ import annotations

from pathlib import Path

from video_world.dataset import generate_dataset


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_whatever_the_worker_count(tiny_dataset: Path, tiny_options: dict, tmp_path: Path) -> None:
    # Given the session dataset rendered by one worker
    # When the same seed and options are rendered again by two worker processes
    generate_dataset(tmp_path / "again", clips=8, seed=11, workers=2, **tiny_options)
    # Then the manifest and every clip are byte-identical
    assert _snapshot(tmp_path / "again") == _snapshot(tiny_dataset)


def test_another_seed_gives_other_clips(tiny_dataset: Path, tiny_options: dict, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "other", clips=2, seed=12, workers=1, **tiny_options)
    first = (tiny_dataset / "clips" / "s11-000000.mp4").read_bytes()
    assert (tmp_path / "other" / "clips" / "s12-000000.mp4").read_bytes() != first


def test_tag_noise_changes_labels_but_not_pixels(tiny_dataset: Path, tiny_options: dict, tmp_path: Path) -> None:
    rows = generate_dataset(tmp_path / "noisy", clips=8, seed=11, workers=1, tag_noise=0.5, **tiny_options)
    clean = _snapshot(tiny_dataset)
    noisy = _snapshot(tmp_path / "noisy")
    assert {k: v for k, v in noisy.items() if k.startswith("clips/")} == {
        k: v for k, v in clean.items() if k.startswith("clips/")}
    assert any(row["tags"] != row["clean_tags"] for row in rows)
