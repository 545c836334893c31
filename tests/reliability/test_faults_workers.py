"""Worker faults against the real broker and real ``stream-tagger run`` processes: nothing is lost.

Invariant (DESIGN.md §1): every input event ends as a tag record or a DLQ record; duplicates after a
crash are allowed and carry the same video_id.
"""

from __future__ import annotations

import signal

EVENTS = 60
RESULTS_TIMEOUT_S = 90.0
#: One event at a time, so events are still in flight when the signal arrives.
SLOW = {"STREAM_TAGGER_BATCH_SIZE": "1", "STREAM_TAGGER_DECODE_WORKERS": "1", "STREAM_TAGGER_MAX_INFLIGHT": "4"}


def test_kill_9_of_one_worker_loses_nothing(topics, group_id, worker_factory, results_for, worker_env_for,
                                            produce_good_events):
    # Given two workers in one group and events on 4 partitions
    env = worker_env_for(topics, group_id, **SLOW)
    victim, survivor = worker_factory(env), worker_factory(env)
    results = results_for(topics)
    ids = produce_good_events(topics.input, EVENTS, "k9")

    # When one worker is killed with SIGKILL while results are still being produced
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), victim.log_tail()
    victim.signal(signal.SIGKILL)
    print(f"handled when killed: {len(results.handled_ids())}/{EVENTS}")

    # Then the survivor takes over and count(in) == distinct(out) + dlq: every event, nothing else
    done = results.wait_for(lambda r: r.handled_ids() >= set(ids), RESULTS_TIMEOUT_S, workers=(survivor,))
    assert done, f"missing {sorted(set(ids) - results.handled_ids())[:10]}\n{survivor.log_tail()}"
    assert results.handled_ids() == set(ids)
    assert survivor.alive()


def test_sigterm_drains_publishes_and_commits(topics, group_id, worker_factory, results_for, worker_env_for,
                                              produce_good_events, offsets_check):
    # Given a worker busy with events
    worker = worker_factory(worker_env_for(topics, group_id, **SLOW))
    results = results_for(topics)
    ids = produce_good_events(topics.input, EVENTS, "term")
    assert results.wait_for(lambda r: len(r.tags) >= 1, RESULTS_TIMEOUT_S), worker.log_tail()

    # When it receives SIGTERM
    worker.signal(signal.SIGTERM)
    print(f"handled at SIGTERM: {len(results.handled_ids())}/{EVENTS}")

    # Then it exits 0, and every offset it committed covers only events whose result was published
    assert worker.wait() == 0, worker.log_tail()
    results.wait_for(lambda r: False, 1.0)  # collect everything published before the exit
    committed, unpublished = offsets_check(topics.input, group_id, results.handled_ids())
    assert committed, "a drained worker must have committed offsets"
    assert unpublished == {}, "committed past events that have no tag or DLQ record"

    # And a new worker in the group finishes the rest: nothing lost
    successor = worker_factory(worker_env_for(topics, group_id))
    assert results.wait_for(lambda r: r.handled_ids() >= set(ids), RESULTS_TIMEOUT_S, workers=(successor,))
