"""The memory writer against the real local broker, in-process: idempotence, the DLQ, the guard, rebases."""

from __future__ import annotations

import base64
import json
import logging
from importlib import resources

import jsonschema
from feedback_helpers import (
    POISON,
    POISON_LABEL,
    THINNED,
    InProcessWriter,
    committed_offset,
    produce,
    read_topic,
    settings_env,
    wait_until,
)

from stream_tagger.engines.manifest import EngineManifest
from stream_tagger.engines.memory_bank import MemoryBank
from stream_tagger.engines.repository import latest_version, list_versions, retire_version
from stream_tagger.feedback.confirmation import example_key
from stream_tagger.feedback.session import MemorySession, Moved
from stream_tagger.metrics import MemoryMetrics
from stream_tagger.settings import Settings
from stream_tagger.testing.memory import thin_class

PUBLISHED = "stream_tagger_memory_versions_published_total"
DLQ_SCHEMA = json.loads(
    resources.files("stream_tagger.schemas").joinpath("dlq_record.schema.json").read_text()
)
BOUND = 8 * POISON  # vectors per class in the poisoned test: the poison replaces a whole class


def validate_dlq_record(record: dict) -> None:
    jsonschema.Draft202012Validator(DLQ_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(record)


def versions(engines_root) -> list[int]:
    return [number for number, _ in list_versions(engines_root / "early_action")]


def test_duplicates_add_once_and_bad_confirmations_go_to_the_dlq(
    broker, topic_factory, world, engines_root, confirmation, tmp_path
):
    # Given a writer that publishes every 3 added confirmations
    topic = topic_factory(1, prefix="confirmed")
    broker.create_topic(f"{topic}.dlq", 1)
    env = settings_env(
        broker,
        topic,
        engines_root,
        world.media,
        world.eval_dir,
        memory_publish_every=3,
        memory_publish_interval_s=600,
    )
    writer = InProcessWriter(env)
    garbage = world.media / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    good = [confirmation(clip, THINNED) for clip in world.confirm[:3]]
    bad = {
        "invalid_json": b"{not json",
        "invalid_event": confirmation(world.confirm[0], THINNED, confirmed_at="yesterday"),
        "unknown_label": confirmation(world.confirm[0], "moonwalk"),
        "uri_forbidden": confirmation(tmp_path / "elsewhere.mp4", THINNED),
        "fetch_failed": confirmation(world.media / "no-such-clip.mp4", THINNED),
        "decode_failed": confirmation(garbage, THINNED),
    }
    try:
        # When each good confirmation arrives twice, interleaved with one bad confirmation of each kind
        produce(broker, topic, [*good, *bad.values(), *good])
        assert wait_until(lambda: writer.value(PUBLISHED) >= 1), "no version published"
        dlq = read_topic(broker, f"{topic}.dlq", len(bad))
        # Then one version holds the three examples once each, and every bad one has its DLQ record
        assert versions(engines_root) == [1, 2, 3]
        bank = MemoryBank.load(latest_version(engines_root / "early_action"))
        assert sorted(bank.example_keys) == sorted(example_key(c.stem, THINNED) for c in world.confirm[:3])
        assert sorted(record["code"] for record in dlq) == sorted(bad)
        for record in dlq:  # the worker's DLQ record schema, original bytes included
            validate_dlq_record(record)
            assert base64.b64decode(record["original"]) == bad[record["code"]]
        assert writer.value("stream_tagger_memory_confirmations_duplicate_total") == 3
        assert writer.value("stream_tagger_memory_confirmations_added_total") == 3
        for code in bad:
            assert writer.value("stream_tagger_memory_confirmations_rejected_total", code=code) == 1
        group = writer.settings.memory_group_id
        assert wait_until(lambda: committed_offset(broker, group, topic) == 12)
        # When the same confirmations arrive again after the publish
        before = latest_version(engines_root / "early_action")
        produce(broker, topic, good)
        assert wait_until(lambda: writer.value("stream_tagger_memory_confirmations_duplicate_total") == 6)
        assert wait_until(lambda: committed_offset(broker, group, topic) == 15)
        # Then the bank is unchanged and no version was published
        assert latest_version(engines_root / "early_action") == before
        assert writer.value("stream_tagger_memory_pending_confirmations") == 0
    finally:
        assert writer.stop() == 0


def test_the_guard_refuses_a_poisoned_stream(
    broker, topic_factory, world, engines_root, confirmation, caplog
):
    # Given a bank bounded at 48 vectors per class (6 clips of 8 frames), served as the newest version
    thin_class(engines_root, THINNED, max_per_class=BOUND)
    topic = topic_factory(1, prefix="poisoned")
    broker.create_topic(f"{topic}.dlq", 1)
    env = settings_env(
        broker,
        topic,
        engines_root,
        world.media,
        world.eval_dir,
        memory_publish_every=len(world.poison),
        memory_publish_interval_s=600,
        memory_max_per_class=BOUND,
        memory_guard_margin=0.02,
    )
    writer = InProcessWriter(env)
    try:
        # When as many clips of one action as the bound holds are confirmed as another action
        with caplog.at_level(logging.INFO, logger="stream_tagger.feedback"):
            produce(broker, topic, [confirmation(clip, POISON_LABEL) for clip in world.poison])
            assert wait_until(lambda: writer.value("stream_tagger_memory_publishes_refused_total") == 1), (
                "the guard did not refuse"
            )
            dlq = read_topic(broker, f"{topic}.dlq", len(world.poison))
        # Then nothing is published, every poisoned confirmation is in the DLQ, the offsets move on
        assert versions(engines_root) == [1, 2, 3] and writer.value(PUBLISHED) == 0
        assert [record["code"] for record in dlq] == ["guard_refused"] * len(world.poison)
        assert any(r.getMessage() == "memory publish refused by the guard" for r in caplog.records)
        candidate = writer.value("stream_tagger_memory_guard_accuracy", bank="candidate")
        published = writer.value("stream_tagger_memory_guard_accuracy", bank="published")
        print(f"\nguard on the poisoned update: published {published:.3f}, candidate {candidate:.3f}")
        assert candidate < published - 0.02
        assert wait_until(
            lambda: committed_offset(broker, writer.settings.memory_group_id, topic) == len(world.poison)
        )
        assert writer.value("stream_tagger_memory_bank_vectors", label=POISON_LABEL) == BOUND  # reverted
    finally:
        assert writer.stop() == 0


def test_a_rollback_under_the_writer_rebases_it_on_the_version_served_again(
    broker, topic_factory, world, engines_root, confirmation
):
    # Given a writer that published version 3 with two confirmations
    topic = topic_factory(1, prefix="rollback")
    broker.create_topic(f"{topic}.dlq", 1)
    env = settings_env(
        broker,
        topic,
        engines_root,
        world.media,
        world.eval_dir,
        memory_publish_every=2,
        memory_publish_interval_s=600,
    )
    writer = InProcessWriter(env)
    try:
        produce(broker, topic, [confirmation(clip, THINNED) for clip in world.confirm[:2]])
        assert wait_until(lambda: writer.value(PUBLISHED) == 1)
        # When an operator rolls version 3 back, and more confirmations arrive
        retire_version(engines_root, "early_action")
        produce(broker, topic, [confirmation(clip, THINNED) for clip in world.confirm[2:4]])
        assert wait_until(lambda: writer.value(PUBLISHED) == 2)
        # Then version 4 grew from version 2: it holds the new examples, not the rolled-back ones
        newest = latest_version(engines_root / "early_action")
        assert newest.name == "4"
        assert EngineManifest.load(newest).metrics["memory_update"]["parent"].startswith("early_action/2@")
        keys = MemoryBank.load(newest).example_keys
        assert sorted(keys) == sorted(example_key(c.stem, THINNED) for c in world.confirm[2:4])
    finally:
        assert writer.stop() == 0


def test_a_publish_whose_parent_was_rolled_back_meanwhile_moves_instead_of_failing(broker, world, engines_root):
    # Given a session on version 2 with one pending example (the vectors of one clip it already holds)
    env = settings_env(broker, "unused", engines_root, world.media, world.eval_dir)
    session = MemorySession.open(Settings(**InProcessWriter.fields(env)), MemoryMetrics())
    try:
        served = MemoryBank.load(engines_root / "early_action" / "2")
        one_clip = served.features[served.labels == served.classes.index(THINNED)][:8]
        assert session.add("item", one_clip, THINNED, example_key("rolled-back", THINNED))
        # When version 2 is rolled back before the session publishes (the writer has not looked yet)
        retire_version(engines_root, "early_action")
        outcome = session.publish()
    finally:
        session.close()
    # Then nothing is published and the pending item goes back to be re-read, instead of a crash
    assert isinstance(outcome, Moved) and outcome.items == ["item"], outcome
    assert versions(engines_root) == [1]
