"""The stall watchdog: events in flight with none finished fail the worker, but time the process
was suspended (SIGSTOP, a paused VM) is not a stall."""

from __future__ import annotations

from kafka import TopicPartition

from stream_tagger.kafka.worker import LOOP_AWAY_S, Worker
from stream_tagger.metrics import Metrics
from stream_tagger.settings import Settings


def watched_worker(stall_timeout_s: float) -> tuple[Worker, float]:
    worker = Worker(Settings(_env_file=None, stall_timeout_s=stall_timeout_s), tagger=None, metrics=Metrics())
    worker.broker_up = True
    worker.tracker.add(TopicPartition("videos.new", 0), 0)  # one event in flight, never finished
    start = 1000.0
    worker._last_progress = worker._last_check = start
    return worker, start


def run_loop(worker: Worker, start: float, seconds: float, step_s: float = 0.05) -> float:
    now = start
    while now < start + seconds and worker.fatal is None:
        now += step_s
        worker._check_progress(now)
    return now


def test_running_loop_with_no_event_finished_fails_the_worker_after_the_stall_timeout() -> None:
    # Given a running loop with one event in flight that never finishes
    worker, start = watched_worker(stall_timeout_s=10)
    # When the loop goes on for longer than the stall timeout
    stopped_at = run_loop(worker, start, 30)
    # Then the watchdog failed the worker just after the timeout
    assert worker.fatal is not None and "none finished in 10s" in worker.fatal
    assert 10 < stopped_at - start < 10.2


def test_time_the_process_was_suspended_is_not_charged_as_a_stall() -> None:
    # Given a worker whose process is suspended for 300 s (the loop's next turn comes 300 s later)
    worker, start = watched_worker(stall_timeout_s=10)
    now = run_loop(worker, start, 4)
    worker._check_progress(now + 300)
    # Then it is not failed on waking up
    assert worker.fatal is None and LOOP_AWAY_S < 300
    # And the running time before and after the suspension still counts: 4 s + 6 s more trips it
    stopped_at = run_loop(worker, now + 300, 30)
    assert worker.fatal is not None
    assert 5.9 < stopped_at - (now + 300) < 6.2
