"""One real `stream-tagger run` process: bad messages become DLQ records with their code; SIGTERM exits 0."""

from __future__ import annotations

import base64
import json
import signal

from kafka import KafkaProducer
from worker_helpers import Worker, read_topic, wait_until, worker_env


def test_bad_messages_reach_the_dlq_and_good_ones_are_tagged(
    broker,
    topic_factory,
    tmp_path,
    group_id,
    clip_dir,
    tiny_engine_dir,
    validate_tag_record,
    validate_dlq_record,
):
    # Given one worker with a 20 kB message limit
    topics = {
        "input": topic_factory(4, "videos.new"),
        "output": topic_factory(4, "videos.tags"),
        "dlq": topic_factory(4, "videos.dlq"),
    }
    env = worker_env(broker, topics, group_id, clip_dir, tiny_engine_dir)
    worker = Worker({**env, "STREAM_TAGGER_MAX_MESSAGE_BYTES": "20000"}, tmp_path / "worker.log")
    good = (clip_dir / "synth-000.mp4").as_uri()
    messages = {
        "ok": json.dumps({"video_id": "ok", "uri": good, "trace_id": "t-ok", "extra": 1}).encode(),
        "invalid_json": b"{not json",
        "invalid_event": json.dumps({"uri": good}).encode(),
        "uri_forbidden": json.dumps({"video_id": "passwd", "uri": "file:///etc/passwd"}).encode(),
        "fetch_failed": json.dumps({"video_id": "gone", "uri": (clip_dir / "gone.mp4").as_uri()}).encode(),
        "too_large": json.dumps({"video_id": "big", "uri": good, "title": "x" * 30000}).encode(),
    }
    try:
        assert wait_until(lambda: worker.get("/readyz")[0] == 200), worker.log_tail()

        # When every message is produced
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        for name, value in messages.items():
            producer.send(topics["input"], key=name.encode(), value=value)
        producer.flush(10)
        producer.close()

        # Then the good one is tagged and each bad one is in the DLQ with its code and original bytes
        tags = read_topic(broker, topics["output"], lambda rs: len(rs) >= 1)
        dlq = read_topic(broker, topics["dlq"], lambda rs: len(rs) >= len(messages) - 1)
        assert [r["video_id"] for r in tags] == ["ok"]
        validate_tag_record(tags[0])
        for record in dlq:
            validate_dlq_record(record)
        codes = {base64.b64decode(r["original"]): r["code"] for r in dlq}
        expected = {messages[code]: code for code in messages if code != "ok"}
        assert codes == expected

        # When it gets SIGTERM, it drains and exits 0
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0, worker.log_tail()
    finally:
        worker.kill()
