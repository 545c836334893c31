"""A rebalance while events are in flight commits nothing that was not published."""

from __future__ import annotations

import signal

EVENTS = 200
RESULTS_TIMEOUT_S = 90.0
#: One event at a time, so events are still in flight when the second worker joins.
SLOW = {"STREAM_TAGGER_BATCH_SIZE": "1", "STREAM_TAGGER_DECODE_WORKERS": "1", "STREAM_TAGGER_MAX_INFLIGHT": "4"}


def publishers(results) -> set[str]:
    return {record["worker"] for record in results.tags}


def test_rebalance_during_processing_commits_only_published_events(topics, group_id, worker_factory,
                                                                    results_for, worker_env_for,
                                                                    produce_good_events, offsets_check):
    # Given one worker busy with events on 4 partitions
    first = worker_factory(worker_env_for(topics, group_id, STREAM_TAGGER_WORKER_ID="first", **SLOW))
    results = results_for(topics)
    ids = produce_good_events(topics.input, EVENTS, "rb")
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), first.log_tail()

    # When a second worker joins, takes partitions over and publishes, then both die at once
    second = worker_factory(worker_env_for(topics, group_id, STREAM_TAGGER_WORKER_ID="second", **SLOW))
    both_published = results.wait_for(lambda r: publishers(r) == {"first", "second"}, RESULTS_TIMEOUT_S,
                                      workers=(first, second))
    assert both_published, "the second worker never got partitions while events were in flight"
    print(f"handled when killed: {len(results.handled_ids())}/{EVENTS}")
    for worker in (first, second):
        worker.signal(signal.SIGKILL)
    for worker in (first, second):
        worker.wait()
    results.wait_for(lambda r: False, 1.0)  # collect everything published before the kill

    # Then every committed offset covers only events that have a tag or DLQ record
    committed, unpublished = offsets_check(topics.input, group_id, results.handled_ids())
    assert committed
    assert unpublished == {}, "committed past events that have no tag or DLQ record"

    # And a fresh worker finishes the rest: nothing lost
    successor = worker_factory(worker_env_for(topics, group_id))
    assert results.wait_for(lambda r: r.handled_ids() >= set(ids), RESULTS_TIMEOUT_S, workers=(successor,))
    assert results.handled_ids() == set(ids)
