"""Every bad input ends as a valid tag record or a DLQ record with the right code, within a time bound.

Media cases go through ``stream-tagger tag FILE...`` (no Kafka); hostile messages go through a real
``stream-tagger run`` worker and the real broker. Expected outcomes live with the corpus
(tests/corpus/make_corpus.py) and are tabulated with measured outcomes in docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TAG_CLI_TIMEOUT_S = 120.0
WORKER_RESULTS_TIMEOUT_S = 60.0


def run_tag_cli(files: list[Path], env: dict[str, str]) -> list[dict]:
    """Run ``stream-tagger tag`` on ``files``; one JSON record per input, in order."""
    command = [sys.executable, "-m", "stream_tagger.cli", "tag", *map(str, files)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TAG_CLI_TIMEOUT_S,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def outcome(record: dict) -> str:
    """``"tag"`` for a tag record, else the error record's DLQ code."""
    return record.get("code", "tag")


@pytest.fixture(scope="module")
def tag_cli_records(corpus, tag_env) -> dict[str, dict]:
    files = [corpus.root / case.file for case in corpus.media]
    records = run_tag_cli(files, tag_env)
    assert len(records) == len(files), "stream-tagger tag must print one line per input"
    return {case.name: record for case, record in zip(corpus.media, records)}


def test_every_media_case_gets_its_expected_outcome(corpus, tag_cli_records):
    # Given the corpus (built by the session fixture) and the records `stream-tagger tag` printed for it
    # Then each case's outcome is one of those it allows
    wrong = {case.name: (outcome(tag_cli_records[case.name]), case.expect) for case in corpus.media
             if outcome(tag_cli_records[case.name]) not in case.expect}
    assert wrong == {}, f"case: (got, expected) -> {wrong}"


def test_tag_records_are_valid_and_error_records_carry_a_message(corpus, tag_cli_records, validate_tag_record):
    for case in corpus.media:
        record = tag_cli_records[case.name]
        if outcome(record) == "tag":
            validate_tag_record(record)
        else:
            assert record["message"], case.name


def test_two_hour_video_is_tagged_from_its_early_frames_only(tag_cli_records):
    # Given a 2-hour, 1 fps video; the engines ask for at most the first 2 seconds
    record = tag_cli_records["two_hours.mp4"]

    # Then it was tagged, and the decoder covered seconds, not hours
    assert outcome(record) == "tag"
    assert record["decode"]["seconds_covered"] <= 3.0


def test_hostile_messages_reach_the_dlq_with_their_code(broker, corpus, topics, group_id, producer_factory,
                                                        worker_factory, results_for, worker_env_for):
    # Given a worker on a fresh input topic
    worker = worker_factory(worker_env_for(topics, group_id))
    results = results_for(topics)

    # When every hostile message and one good event are produced
    producer = producer_factory(max_request_size=16 * 1024 * 1024)
    sent = {}
    for case in corpus.events:
        metadata = producer.send(topics.input, key=case.name.encode(), value=corpus.payload(case)).get(timeout=10)
        sent[(metadata.partition, metadata.offset)] = case
    good = json.dumps({"video_id": "good-1", "uri": corpus.uri("good.mp4"), "title": "fine"}).encode()
    producer.send(topics.input, key=b"good-1", value=good).get(timeout=10)

    # Then each hostile message is a DLQ record with its code, and the good event is tagged
    finished = results.wait_for(lambda r: len(r.dlq) >= len(sent) and "good-1" in r.tagged_ids(),
                                WORKER_RESULTS_TIMEOUT_S, workers=(worker,))
    assert finished, f"dlq={len(results.dlq)}/{len(sent)} tags={results.tagged_ids()}\n{worker.log_tail()}"
    codes = {sent[(record["partition"], record["offset"])].name: record["code"] for record in results.dlq}
    expected = {case.name: case.expect for case in corpus.events}
    assert set(codes) == set(expected), "every hostile message must have exactly one DLQ record"
    wrong = {name: (code, expected[name]) for name, code in codes.items() if code not in expected[name]}
    assert wrong == {}, f"case: (got, expected) -> {wrong}"
    assert worker.alive(), "one bad event must never crash the worker"
