"""``stream-tagger run`` with one fault injected into the worker's own code, for the supervision tests.

    STREAM_TAGGER_TEST_FAULT=<kind>:<video_id> python tests/reliability/faulty_worker.py

Kinds (each hits only the event whose video_id matches):
- ``serialise``: writing its tag record and its DLQ record raises TypeError (a bug in record assembly);
- ``decode_bug``: preparing it raises RecursionError (a bug in one event's decode path);
- ``hang``: decoding it never returns, past every deadline (a stuck native call);
- ``inference_loop``: the inference loop raises when a batch holds it (a bug outside per-event handling).
Kafka, the engines and the decoder stay real; only the named spot misbehaves.
"""

from __future__ import annotations

import os
import sys
import threading

from stream_tagger import batcher, records, tagger
from stream_tagger.cli.main import main
from stream_tagger.kafka import publisher

kind, _, target = os.environ["STREAM_TAGGER_TEST_FAULT"].partition(":")

if kind == "serialise":
    real_to_json = records.to_json_bytes

    def broken_to_json(record: dict) -> bytes:
        if record.get("video_id") == target:
            raise TypeError("Object of type float32 is not JSON serializable")
        return real_to_json(record)

    publisher.to_json_bytes = broken_to_json
elif kind in ("decode_bug", "hang"):
    real_prepare = tagger.Tagger.prepare

    def faulty_prepare(self, event, message, times, source=None):
        if event.video_id == target:
            if kind == "hang":
                threading.Event().wait()
            raise RecursionError("maximum recursion depth exceeded")
        return real_prepare(self, event, message, times, source)

    tagger.Tagger.prepare = faulty_prepare
elif kind == "inference_loop":
    real_next_batch = batcher.Batcher.next_batch

    def faulty_next_batch(self, idle_timeout_s: float = 0.1):
        batch = real_next_batch(self, idle_timeout_s)
        if any(item.event.video_id == target for item in batch):
            raise MemoryError("cannot allocate the batch")
        return batch

    batcher.Batcher.next_batch = faulty_next_batch
else:
    raise SystemExit(f"unknown fault {kind!r}")

sys.exit(main(["run"]))
