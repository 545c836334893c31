"""Online memory, measured end to end on the real local broker.

A worker (``stream-tagger run``) serves the trained early_action engine with one class's bank thinned;
``stream-tagger memory`` receives confirmations for half of that class's clips, publishes a version,
the worker hot-reloads it, and the other half (held out) is tagged before and after. Clips of the other
classes are tagged too, to see what the update costs them. Each split draws another half.

    stream-tagger-train make-dataset --out data/om-clips --clips 240 --seed 4242
    stream-tagger-train make-dataset --out data/om-eval --clips 60 --seed 4343
    python -m bench.online_memory --data data/om-clips --eval data/om-eval --label u_turn --splits 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench import machine
from bench.kafka_io import broker
from stream_tagger.testing.broker import free_port, kafka_timeouts
from stream_tagger.testing.memory import KEPT_VECTORS, thin_class

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TIMEOUT_S = 300.0


class Process:
    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.port = int(env["STREAM_TAGGER_METRICS_PORT"])
        with open(log, "wb") as handle:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "stream_tagger.cli", command],
                env={**os.environ, **env},
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def metric(self, name: str, **labels: str) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return -1.0
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(60)


def wait(condition, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > TIMEOUT_S:
            raise TimeoutError(what)
        time.sleep(0.1)
    return time.monotonic()


def env_for(local, topics: dict[str, str], engines: Path, media: list[Path], eval_dir: Path, **extra) -> dict:
    values = {
        "brokers": local.bootstrap,
        "input_topic": topics["input"],
        "output_topic": topics["tags"],
        "dlq_topic": topics["dlq"],
        "group_id": f"w-{topics['input']}",
        "confirmed_topic": topics["confirmed"],
        "confirmed_dlq_topic": topics["confirmed"] + ".dlq",
        "memory_group_id": f"m-{topics['input']}",
        "engine_dir": str(engines),
        "uri_roots": json.dumps([str(m.resolve()) for m in media]),
        "memory_eval_set": str(eval_dir),
        "metrics_host": "127.0.0.1",
        "metrics_port": str(free_port()),
        "reload_interval_s": "0.5",
        **kafka_timeouts(),
        **extra,
    }
    return {f"STREAM_TAGGER_{key.upper()}": str(value) for key, value in values.items()}


def send(local, topic: str, payloads: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=local.bootstrap, acks="all")
    for payload in payloads:
        producer.send(topic, json.dumps(payload).encode(), key=payload["video_id"].encode())
    producer.flush(30)
    producer.close()


def tags(local, topic: str, prefix: str, count: int) -> dict[str, dict]:
    consumer = KafkaConsumer(
        bootstrap_servers=local.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    found: dict[str, dict] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while len(found) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            for message in batch:
                record = json.loads(message.value)
                if record["video_id"].startswith(prefix):
                    found[record["video_id"].removeprefix(prefix)] = record
    consumer.close(autocommit=False)
    return found


def tag_round(local, topics, rows: list[dict], data: Path, prefix: str) -> dict[str, str]:
    send(
        local,
        topics["input"],
        [{"video_id": prefix + r["clip_id"], "uri": (data / r["file"]).resolve().as_uri()} for r in rows],
    )
    return {
        clip: record["early_action"]["label"]
        for clip, record in tags(local, topics["tags"], prefix, len(rows)).items()
    }


def accuracy(predicted: dict[str, str], rows: list[dict]) -> float:
    return round(float(np.mean([predicted.get(r["clip_id"]) == r["early_action"] for r in rows])), 4)


def run_split(local, args, split: int, rows: list[dict], scratch: Path) -> dict:
    rng = np.random.default_rng(split)
    own = [r for r in rows if r["early_action"] == args.label]
    own = [own[i] for i in rng.permutation(len(own))]
    confirm, held_out = own[: len(own) // 2], own[len(own) // 2 :]
    others = [r for r in rows if r["early_action"] != args.label][: args.others]
    engines = scratch / f"engines-{split}"
    shutil.copytree(REPO / "engines" / "early_action" / "1", engines / "early_action" / "1")
    thin_class(engines, args.label)
    topics = {name: f"om-{name}-{uuid.uuid4().hex[:6]}" for name in ("input", "tags", "dlq", "confirmed")}
    for topic in [*topics.values(), topics["confirmed"] + ".dlq"]:
        local.create_topic(topic, 1)
    env = env_for(
        local,
        topics,
        engines,
        [args.data, args.eval],
        args.eval,
        memory_publish_every=len(confirm),
        memory_publish_interval_s=600,
    )
    worker = Process("run", env, scratch / f"worker-{split}.log")
    writer = Process(
        "memory", {**env, "STREAM_TAGGER_METRICS_PORT": str(free_port())}, scratch / f"memory-{split}.log"
    )
    try:
        wait(
            lambda: worker.metric("stream_tagger_engine_info", engine="early_action", version="2") == 1,
            "worker",
        )
        wait(lambda: writer.metric("stream_tagger_memory_writer_active") == 1, "writer")
        before = tag_round(local, topics, held_out + others, args.data, "before-")
        guard_before = writer.metric("stream_tagger_memory_guard_accuracy", bank="published")
        sent = time.monotonic()
        send(
            local,
            topics["confirmed"],
            [
                {
                    "video_id": r["clip_id"],
                    "early_action": args.label,
                    "source": "bench",
                    "uri": (args.data / r["file"]).resolve().as_uri(),
                    "confirmed_at": "2026-12-02T10:00:00Z",
                }
                for r in confirm
            ],
        )
        published = wait(
            lambda: writer.metric("stream_tagger_memory_versions_published_total") == 1, "publish"
        )
        served = wait(
            lambda: worker.metric("stream_tagger_engine_info", engine="early_action", version="3") == 1,
            "reload",
        )
        after = tag_round(local, topics, held_out + others, args.data, "after-")
        guard_after = writer.metric("stream_tagger_memory_guard_accuracy", bank="published")
    finally:
        writer.stop()
        worker.stop()
    return {
        "split": split,
        "confirmations": len(confirm),
        "held_out": len(held_out),
        "others": len(others),
        f"{args.label}_recall_before": accuracy(before, held_out),
        f"{args.label}_recall_after": accuracy(after, held_out),
        "others_accuracy_before": accuracy(before, others),
        "others_accuracy_after": accuracy(after, others),
        "guard_eval_accuracy_before": round(guard_before, 4),
        "guard_eval_accuracy_after_publish": round(guard_after, 4),
        "seconds_confirmations_to_published": round(published - sent, 2),
        "seconds_confirmations_to_served": round(served - sent, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="dataset folder of the confirmed and held-out clips"
    )
    parser.add_argument(
        "--eval", type=Path, required=True, help="dataset folder of the guard's evaluation set"
    )
    parser.add_argument("--label", default="u_turn")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--others", type=int, default=60, help="clips of the other classes tagged each round")
    parser.add_argument("--out", type=Path, default=RESULTS / "online-memory.json")
    args = parser.parse_args(argv)
    rows = [
        json.loads(line) for line in (args.data / "manifest.jsonl").read_text().splitlines() if line.strip()
    ]
    results = {
        "command": " ".join(["python -m bench.online_memory", *(argv or sys.argv[1:])]),
        "machine": machine.describe(),
        "label": args.label,
        "thinned_to_vectors": KEPT_VECTORS,
        "splits": [],
    }
    with broker() as local, tempfile.TemporaryDirectory() as scratch:
        for split in range(args.splits):
            results["splits"].append(run_split(local, args, split, rows, Path(scratch)))
            print(json.dumps(results["splits"][-1]), flush=True)
    results["load_average_at_end"] = machine.load_average()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
