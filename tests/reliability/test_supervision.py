"""Issue 15, classes 1–3: no message can stop tagging, no thread dies silently, no drain runs forever.

Each test runs real ``stream-tagger run`` processes against the session's real broker. Faults in the
worker's own code come from ``faulty_worker.py`` (Kafka, engines and decoder stay real). Every test
ends with the same check: every input event has a tag or DLQ record, and the committed offsets cover
only events that were published.
"""

from __future__ import annotations

import base64
import http.server
import json
import signal
import threading
import time
from pathlib import Path

import pytest

from stream_tagger.testing.broker import free_port

FAULTY_WORKER = str(Path(__file__).with_name("faulty_worker.py"))
WAIT_S = 90.0


def _produce_raw(producer, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=10)


def _event(video_id: str, uri: str, **fields) -> bytes:
    return json.dumps({"video_id": video_id, "uri": uri, **fields}).encode()


def _assert_nothing_lost(results, offsets_check, topics, group_id, expected: int) -> None:
    assert len(results.handled_ids()) == expected, (sorted(results.handled_ids()), expected)
    committed, unpublished = offsets_check(topics.input, group_id, results.handled_ids())
    assert unpublished == {}


def test_lone_surrogates_and_control_characters_never_stop_tagging(
    topics, group_id, worker_env_for, worker_factory, results_for, producer_factory, corpus, offsets_check
):
    # Given a worker and events whose strings hold lone surrogates (valid JSON escapes) and control bytes
    port = free_port()
    worker = worker_factory(worker_env_for(topics, group_id, STREAM_TAGGER_METRICS_PORT=str(port)))
    good = corpus.uri("good.mp4")
    forbidden = b'{"video_id": "bad-\\udfff", "uri": "file:///etc/passwd"}'
    poisoned = [
        (b"sur-1", b'{"video_id": "sur-1", "uri": "' + good.encode() + b'", "trace_id": "\\udfff"}'),
        ("sur-\ufffd-2".encode(), b'{"video_id": "sur-\\ud800-2", "uri": "' + good.encode() + b'"}'),
        ("bad-\ufffd".encode(), forbidden),  # keys: the producer's own encoding of the video_id
        (b"ctl", b'{"video_id": "ctl", "uri": "' + good.encode() + b'", "title": "Live\\u0000\\u001b[31m \\udfff"}'),
    ]
    _produce_raw(producer_factory(), topics.input, poisoned + [(f"ok-{i}".encode(), _event(f"ok-{i}", good))
                                                               for i in range(5)])
    results = results_for(topics)

    # When the worker has handled all nine
    assert results.wait_for(lambda r: len(r.handled_ids()) == 9, WAIT_S, (worker,)), worker.log_tail()

    # Then the poisoned strings were cleaned by the documented rule, the DLQ kept the bytes exactly
    tags = {record["video_id"]: record for record in results.tags}
    assert tags["sur-1"]["trace_id"] == "\ufffd"
    assert "sur-\ufffd-2" in tags and "ctl" in tags
    (dlq,) = results.dlq
    assert dlq["code"] == "uri_forbidden" and dlq["video_id"] == "bad-\ufffd"
    assert base64.b64decode(dlq["original"]) == forbidden
    assert {f"ok-{i}" for i in range(5)} <= set(tags)
    # And the worker is alive, ready, and tags what comes next
    assert worker.alive() and worker.http_status("/readyz") == 200 and worker.http_status("/healthz") == 200
    _produce_raw(producer_factory(), topics.input, [(b"after", _event("after", good))])
    assert results.wait_for(lambda r: "after" in r.tagged_ids(), WAIT_S, (worker,))
    _assert_nothing_lost(results, offsets_check, topics, group_id, expected=10)


def test_a_bug_on_one_event_becomes_its_dlq_record_and_tagging_goes_on(
    topics, group_id, worker_env_for, worker_factory, results_for, producer_factory, corpus, offsets_check
):
    port = free_port()
    env = worker_env_for(topics, group_id, STREAM_TAGGER_METRICS_PORT=str(port),
                         STREAM_TAGGER_TEST_FAULT="decode_bug:boom")
    worker = worker_factory(env, [FAULTY_WORKER])
    good = corpus.uri("good.mp4")
    _produce_raw(producer_factory(), topics.input,
                 [(b"boom", _event("boom", good))] + [(f"ok-{i}".encode(), _event(f"ok-{i}", good)) for i in range(4)])
    results = results_for(topics)

    assert results.wait_for(lambda r: len(r.handled_ids()) == 5, WAIT_S, (worker,)), worker.log_tail()

    (dlq,) = results.dlq
    assert dlq["video_id"] == "boom" and dlq["code"] == "decode_failed" and "RecursionError" in dlq["message"]
    assert results.tagged_ids() == {f"ok-{i}" for i in range(4)}
    assert worker.alive() and worker.http_status("/readyz") == 200
    assert worker.metric("stream_tagger_unexpected_errors_total", stage="decode") == 1
    _assert_nothing_lost(results, offsets_check, topics, group_id, expected=5)


@pytest.mark.parametrize(
    ("fault", "log_line"),
    [
        ("serialise", "DLQ record not published"),  # neither the record nor its DLQ record can be written
        ("hang", "worker stalled"),  # a decode that never returns, past every deadline
    ],
)
def test_a_worker_that_cannot_go_on_exits_non_zero_and_its_events_are_redelivered(
    fault, log_line, topics, group_id, worker_env_for, worker_factory, results_for, producer_factory, corpus,
    offsets_check,
):
    # Given a worker with a fault that hits one event, and a few events before and after it
    good = corpus.uri("good.mp4")
    env = worker_env_for(topics, group_id, STREAM_TAGGER_METRICS_PORT=str(free_port()),
                         STREAM_TAGGER_TEST_FAULT=f"{fault}:boom", STREAM_TAGGER_DECODE_WORKERS="1",
                         STREAM_TAGGER_STALL_TIMEOUT_S="5", STREAM_TAGGER_RETRY_BACKOFF_S="0.05")
    faulty = worker_factory(env, [FAULTY_WORKER])
    messages = [(f"ok-{i}".encode(), _event(f"ok-{i}", good)) for i in range(3)]
    messages.insert(1, (b"boom", _event("boom", good)))
    _produce_raw(producer_factory(), topics.input, messages)

    # When the fault hits: the worker says why, fails, and exits non-zero (Kubernetes restarts it)
    assert faulty.wait(timeout_s=WAIT_S) == 1
    log = faulty.log_path.read_text(errors="replace")
    assert log_line in log and "worker stopped after a fatal error" in log

    # Then a healthy worker in the same group gets every event that was not published, "boom" included
    healthy = worker_factory(worker_env_for(topics, group_id))
    results = results_for(topics)
    assert results.wait_for(lambda r: len(r.handled_ids()) == 4, WAIT_S, (healthy,)), healthy.log_tail()
    assert "boom" in results.tagged_ids()
    _assert_nothing_lost(results, offsets_check, topics, group_id, expected=4)


def test_an_inference_loop_bug_kills_no_thread_silently(
    topics, group_id, worker_env_for, worker_factory, results_for, producer_factory, corpus, offsets_check
):
    """A thread dying for good is logged with its traceback and stops the worker (exit 1)."""
    env = worker_env_for(topics, group_id, STREAM_TAGGER_TEST_FAULT="inference_loop:boom")
    faulty = worker_factory(env, [FAULTY_WORKER])
    _produce_raw(producer_factory(), topics.input, [(b"boom", _event("boom", corpus.uri("good.mp4")))])
    assert faulty.wait(timeout_s=WAIT_S) == 1
    log = [json.loads(line) for line in faulty.log_path.read_text().splitlines() if line.startswith("{")]
    (failure,) = [entry for entry in log if entry["msg"] == "thread failed"]
    assert failure["failed_thread"] == "inference" and "Traceback" in failure["exc"]

    healthy = worker_factory(worker_env_for(topics, group_id))
    results = results_for(topics)
    assert results.wait_for(lambda r: r.tagged_ids() == {"boom"}, WAIT_S, (healthy,)), healthy.log_tail()
    _assert_nothing_lost(results, offsets_check, topics, group_id, expected=1)


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Announces a 10 MB video, then sends one byte a second for as long as the client listens."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10 << 20))
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            return

    def log_message(self, *args) -> None:
        return


@pytest.fixture
def trickle_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("trickling", [2, 3])  # every decode thread held, or more inputs than threads
def test_sigterm_drain_is_bounded_whatever_the_inputs_do(
    trickling, topics, group_id, worker_env_for, worker_factory, results_for, producer_factory, corpus,
    offsets_check, trickle_server,
):
    # Given a worker whose decode threads are all held by servers that trickle one byte a second
    env = worker_env_for(topics, group_id, STREAM_TAGGER_URI_HOSTS='["127.0.0.1"]',
                         STREAM_TAGGER_FETCH_TIMEOUT_S="120", STREAM_TAGGER_DRAIN_TIMEOUT_S="2",
                         STREAM_TAGGER_DECODE_WORKERS="2", STREAM_TAGGER_METRICS_PORT=str(free_port()))
    worker = worker_factory(env)
    messages = [(f"slow-{i}".encode(), _event(f"slow-{i}", f"{trickle_server}/slow-{i}.mp4")) for i in range(trickling)]
    messages += [(f"ok-{i}".encode(), _event(f"ok-{i}", corpus.uri("good.mp4"))) for i in range(2)]
    _produce_raw(producer_factory(), topics.input, messages)
    deadline = time.monotonic() + WAIT_S
    while worker.http_status("/readyz") != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the slow fetches have started

    # When it gets SIGTERM, it exits 0 within the drain timeout plus shutdown, not when the servers stop
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout_s=20) == 0
    elapsed = time.monotonic() - started
    print(f"SIGTERM -> exit 0 after {elapsed:.1f} s with {trickling} trickling inputs (drain_timeout_s 2)")
    assert elapsed < 15

    # Then what it did not finish was not committed: a worker with a short fetch deadline gets it all
    healthy = worker_factory(worker_env_for(topics, group_id, STREAM_TAGGER_URI_HOSTS='["127.0.0.1"]',
                                            STREAM_TAGGER_FETCH_TIMEOUT_S="2", STREAM_TAGGER_RETRY_ATTEMPTS="1"))
    results = results_for(topics)
    expected = trickling + 2
    assert results.wait_for(lambda r: len(r.handled_ids()) == expected, WAIT_S, (healthy,)), healthy.log_tail()
    assert {record["video_id"] for record in results.dlq} == {f"slow-{i}" for i in range(trickling)}
    _assert_nothing_lost(results, offsets_check, topics, group_id, expected=expected)
