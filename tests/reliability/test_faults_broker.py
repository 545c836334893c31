"""A frozen broker (SIGSTOP longer than the group session timeout, then SIGCONT) does not stop the worker."""

from __future__ import annotations

import time

RESULTS_TIMEOUT_S = 90.0
#: Longer than the group session timeout (6 s, stream_tagger.testing.broker.kafka_timeouts).
BROKER_FREEZE_S = 8.0


def test_worker_recovers_from_a_frozen_broker_without_restart(broker, topics, group_id, worker_factory,
                                                              results_for, worker_env_for, produce_good_events):
    # Given a worker that has tagged a first batch
    worker = worker_factory(worker_env_for(topics, group_id))
    results = results_for(topics)
    before = produce_good_events(topics.input, 5, "before")
    assert results.wait_for(lambda r: r.tagged_ids() >= set(before), RESULTS_TIMEOUT_S), worker.log_tail()

    # When the broker is frozen for longer than the group session timeout, then thawed
    broker.pause()
    try:
        time.sleep(BROKER_FREEZE_S)  # the fault lasts this long; nothing is asserted about timing
    finally:
        broker.resume()
    after = produce_good_events(topics.input, 5, "after")

    # Then the same worker process, never restarted, tags the new events
    assert results.wait_for(lambda r: r.tagged_ids() >= set(after), RESULTS_TIMEOUT_S, workers=(worker,)), \
        worker.log_tail()
    assert worker.alive()
