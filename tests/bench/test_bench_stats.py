"""The steady-state bench's ratios: paired inside each round, so drift over a run cancels."""

from bench.stats import paired_by_round, ratio, summarise


def test_paired_ratios_cancel_a_drift_that_the_ratio_of_medians_does_not():
    # Given a machine that speeds up 30 % halfway through, the worker always at 0.95 of its round's
    # best served mode, and today's modes 1.25x slower; today's best mode happened to run late
    drift = [1.0, 1.0, 1.3, 1.3, 1.3]
    served = [10 * d for d in drift]
    today_early = [8 * d for d in drift[:2]] + [7.0, 7.0, 7.0]  # a slower mode in the fast rounds
    today_late = [6.0, 6.0] + [8 * d for d in drift[2:]]
    worker = [0.95 * s for s in served[:2]] + [0.95 * 10, 0.95 * 10, 0.95 * 13]  # fast rounds hit unevenly
    by_mode = {"served, 3 processes": served, "today, 2 processes": today_early, "today, 3 processes": today_late}

    paired = paired_by_round(worker, by_mode)

    # Then every round's served / today is 1.25, whichever of today's modes won the round
    assert paired["rounds"] == 5
    assert paired["served_over_today"]["values"] == [1.25] * 5
    # and the worker's ratio is its own round's, while a ratio of medians mixes rounds
    assert paired["worker_over_decode_bound"]["values"] == [0.95, 0.95, 0.731, 0.731, 0.95]
    assert paired["worker_over_decode_bound"]["median"] == 0.95
    assert ratio(summarise(worker), summarise(served)) != 0.95


def test_paired_ratios_use_the_rounds_every_mode_completed():
    paired = paired_by_round([5.0, 5.0, 5.0], {"served, 2 threads": [10.0, 10.0], "today, 2 threads": [8.0, 8.0]})
    assert paired["rounds"] == 2 and paired["worker_over_decode_bound"]["values"] == [0.5, 0.5]
