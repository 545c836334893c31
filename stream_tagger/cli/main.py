"""``stream-tagger``: run the worker, grow the early-action memory, tag files, demo, produce, list."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from pydantic import ValidationError

from stream_tagger.errors import ConfigError
from stream_tagger.logs import configure_logging
from stream_tagger.settings import Settings


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from stream_tagger.kafka.worker import run_worker

    return run_worker(settings)


def cmd_memory(args: argparse.Namespace, settings: Settings) -> int:
    from stream_tagger.feedback.writer import run_memory_writer

    return run_memory_writer(settings)


def cmd_tag(args: argparse.Namespace, settings: Settings) -> int:
    from stream_tagger.cli.tag_files import tag_files
    from stream_tagger.metrics import Metrics
    from stream_tagger.tagger import Tagger

    # In-process decoding: tag_files widens the URI policy to the named files' folders, here only.
    tagger = Tagger.from_settings(settings, Metrics(), decode_processes=False)
    try:
        return tag_files(tagger, args.files, settings.batch_size, settings.decode_workers, args.title)
    finally:
        tagger.close()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from stream_tagger.testing.demo import run_demo
    except ImportError as exc:
        raise ConfigError(f"the demo needs the demo extra (pip install 'stream-tagger[demo]'): {exc}") from exc

    return run_demo(settings, args.clips)


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from kafka import KafkaProducer

    from stream_tagger.kafka.connection import BrokerUnreachable, check_brokers

    try:  # a wrong TLS/SASL setting raises ConfigError (exit 2, naming it) instead of a 30 s bootstrap timeout
        check_brokers(settings, settings.kafka_call_timeout_ms / 1000)
    except BrokerUnreachable as exc:
        print(f"stream-tagger: no broker answers at {settings.brokers}: {exc}", file=sys.stderr)
        return 1
    producer = KafkaProducer(**settings.producer_kwargs())
    for target in args.targets:
        uri = target if "://" in target else Path(target).resolve().as_uri()
        video_id = args.video_id or Path(target).stem or uuid.uuid4().hex
        event = {"video_id": video_id, "uri": uri, "title": args.title, "trace_id": uuid.uuid4().hex}
        metadata = producer.send(
            settings.input_topic, key=video_id.encode(), value=json.dumps(event).encode()
        )
        result = metadata.get(timeout=30)
        print(
            json.dumps(
                {"video_id": video_id, "uri": uri, "partition": result.partition, "offset": result.offset}
            )
        )
    producer.close()
    return 0


def cmd_engines_list(args: argparse.Namespace, settings: Settings) -> int:
    from stream_tagger.engines.manifest import ENGINE_NAMES, EngineManifest
    from stream_tagger.engines.repository import list_versions

    for name in ENGINE_NAMES:
        versions = list_versions(settings.engine_dir / name)
        for number, path in versions:
            manifest = EngineManifest.load(path)
            served = "*" if number == versions[-1][0] else " "
            print(f"{served} {manifest.ref:60s} {json.dumps(manifest.metrics, sort_keys=True)[:120]}")
        if not versions:
            print(f"  {name}: no versions under {settings.engine_dir / name}")
    return 0


def cmd_engines_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from stream_tagger.engines.repository import retire_version

    retired, serving = retire_version(settings.engine_dir, args.engine)
    print(json.dumps({"engine": args.engine, "retired": str(retired), "now_newest": str(serving)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-tagger", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="run the Kafka worker (settings: STREAM_TAGGER_* env / .env)"
    ).set_defaults(handler=cmd_run)
    commands.add_parser(
        "memory", help="grow the early-action memory from confirmed labels (one writer, standbys; docs/early_action.md)"
    ).set_defaults(handler=cmd_memory)
    tag = commands.add_parser(
        "tag", help="tag videos without Kafka (one JSON line each): local paths, or URIs under the worker's policy"
    )
    tag.add_argument("files", nargs="+", metavar="FILE|URI")
    tag.add_argument("--title", default="", help="title given to every file (feeds the timeliness engine)")
    tag.set_defaults(handler=cmd_tag)
    demo = commands.add_parser("demo", help="local broker + synthetic clips + worker, end to end")
    demo.add_argument("--clips", type=int, default=8)
    demo.set_defaults(handler=cmd_demo)
    produce = commands.add_parser("produce", help="publish events for files or URIs to the input topic")
    produce.add_argument("targets", nargs="+", metavar="FILE|URI")
    produce.add_argument("--title", default="")
    produce.add_argument("--video-id", default=None, help="video_id (default: the file name's stem)")
    produce.set_defaults(handler=cmd_produce)
    engines = commands.add_parser("engines", help="inspect the engine repository")
    engines_commands = engines.add_subparsers(dest="engines_command", required=True)
    engines_commands.add_parser("list", help="every engine version (* = served)").set_defaults(
        handler=cmd_engines_list
    )
    rollback = engines_commands.add_parser(
        "rollback", help="retire the newest version of ENGINE; running workers go back to the one before"
    )
    rollback.add_argument("engine", choices=["classifier", "timeliness", "early_action"])
    rollback.set_defaults(handler=cmd_engines_rollback)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"stream-tagger: invalid STREAM_TAGGER_* settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging("ERROR" if args.command in ("demo", "tag") else settings.log_level)
    try:
        return args.handler(args, settings)
    except ConfigError as exc:
        print(f"stream-tagger: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
