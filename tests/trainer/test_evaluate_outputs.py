"""``evaluate timeliness`` / ``evaluate early_action`` write their plots beside the metrics they are asked for."""

from __future__ import annotations

import json

import pytest

from stream_tagger.engines.tiny import write_tiny_engine
from trainer.cli import main


@pytest.mark.parametrize("engine, pngs", [("timeliness", {"confusion.png"}),
                                          ("early_action", {"confusion.png", "accuracy_by_fraction.png"})])
def test_an_evaluation_writes_its_plots_beside_its_json_not_into_the_docs(tmp_path, engine, pngs):
    # Given world clips and a tiny engine, and the evaluation run from a working directory with docs/results
    generate = pytest.importorskip("video_world.dataset").generate_dataset
    generate(tmp_path / "data", clips=4, seed=5, workers=1)
    version = write_tiny_engine(tmp_path / "engines", engine)
    (tmp_path / "docs" / "results" / engine).mkdir(parents=True)

    # When it is evaluated with only --json given
    out = tmp_path / "runs" / "eval.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(["evaluate", engine, "--data", str(tmp_path / "data"), "--engine", str(version),
                     "--json", str(out)]) == 0

    # Then the plots sit next to the JSON and nothing is written into docs/results
    assert json.loads(out.read_text())["clips"] == 4
    assert {p.name for p in out.parent.glob("*.png")} == pngs
    assert not any((tmp_path / "docs" / "results" / engine).iterdir())
