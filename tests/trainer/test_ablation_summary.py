"""An ablation's summary covers every seed recorded in its folder, whichever run wrote it last."""

from __future__ import annotations

import json

from trainer.ablation.rows import summarise


def test_the_summary_counts_every_recorded_seed_not_only_the_last_runs(tmp_path):
    # Given a row completed by two runs (seeds 1 and 2, then seed 3 alone) and a row with one seed
    for row, seeds in (("on", {1: 0.5, 2: 0.7, 3: 0.6}), ("off", {2: 0.4})):
        (tmp_path / row).mkdir()
        for seed, accuracy in seeds.items():
            (tmp_path / row / f"seed{seed}.json").write_text(json.dumps({"accuracy": accuracy, "nested": {"x": seed}}))

    # When it is summarised
    table = summarise(tmp_path, ["on", "off", "missing"], ["accuracy", "nested.x"])

    # Then each row has all of its seeds, in seed order, with mean and sample std
    assert table["on"]["seeds"] == [1, 2, 3] and table["on"]["n"] == 3
    assert table["on"]["accuracy"]["values"] == [0.5, 0.7, 0.6]
    assert abs(table["on"]["accuracy"]["mean"] - 0.6) < 1e-12 and abs(table["on"]["accuracy"]["std"] - 0.1) < 1e-12
    assert table["on"]["nested.x"]["values"] == [1, 2, 3]
    assert table["off"]["n"] == 1 and table["off"]["accuracy"]["std"] is None
    assert table["missing"]["n"] == 0 and table["missing"]["accuracy"]["mean"] is None
