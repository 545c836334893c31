"""The naive baseline a user would write first, measured on the same broker and videos.

kafka-python consume → decode the WHOLE video with PyAV (keeping the T sampled frames) → resize in
torch → PyTorch eager model of about the engines' size on T frames, one video at a time → synchronous
produce. It samples the same early-window timestamps as the engines so both do the same job; what
differs is how. torch is imported here only: it is the baseline, never part of the worker.
"""

from __future__ import annotations

import json
import time

import av
import numpy as np

from bench.kafka_io import make_event, producer, send_events
from bench.stats import summarise
from bench.videos import Video
from stream_tagger.sampling import SamplingPolicy


def measure(
    bootstrap: str,
    broker,
    videos: list[Video],
    policy: SamplingPolicy,
    target_params: int | None,
    repetitions: int,
) -> dict:
    """videos/s of the naive loop over the video set, ``repetitions`` times."""
    from kafka import KafkaConsumer

    run = time.strftime("%H%M%S")  # fresh topics and group, also on a reused external broker
    source, sink = f"naive.{run}.videos.new", f"naive.{run}.videos.tags"
    broker.create_topic(source, 1)
    broker.create_topic(sink, 1)
    from bench.naive_model import parameters, sized_model

    model = sized_model(target_params)
    # Library defaults except a shorter group join (~3 s instead of ~23 s, outside the timing).
    consumer = KafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"naive-{run}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    sender = producer(bootstrap, linger_ms=0)
    rates, stages = [], {"decode": [], "infer": [], "produce": []}
    try:
        for rep in range(repetitions):
            events = [make_event(v, f"naive-{rep}-{i}") for i, v in enumerate(videos)]
            send_events(bootstrap, source, events)
            rates.append(len(events) / _serve(consumer, sender, sink, model, policy, len(events), stages))
    finally:
        consumer.close()
        sender.close()
    total = sum(sum(v) for v in stages.values())
    return {
        "videos_per_s": summarise(rates),
        "stage_share": {k: round(sum(v) / total, 3) for k, v in stages.items()},
        "model": {
            "params": parameters(model),
            "target_params": target_params,
            "runtime": "torch eager, batch 1, default threads",
        },
    }


def _serve(consumer, sender, sink: str, model, policy: SamplingPolicy, count: int, stages: dict) -> float:
    """Handle ``count`` messages one at a time; seconds from the first receipt to the last ack."""
    import torch

    started = None
    for handled, message in enumerate(consumer, 1):
        started = started or time.perf_counter()
        event = json.loads(message.value)
        t0 = time.perf_counter()
        frames = decode_whole(event["uri"].removeprefix("file://"), policy)
        t1 = time.perf_counter()
        with torch.no_grad():
            scores = model(torch.from_numpy(frames))
        t2 = time.perf_counter()
        record = {"video_id": event["video_id"], "scores": {k: v.tolist() for k, v in scores.items()}}
        sender.send(sink, key=event["video_id"], value=record).get(timeout=30)
        t3 = time.perf_counter()
        for stage, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2)):
            stages[stage].append(seconds)
        if handled == count:
            return time.perf_counter() - started
    raise RuntimeError("the naive consumer stopped early")


def decode_whole(path: str, policy: SamplingPolicy) -> np.ndarray:
    """Decode every frame, keep the first one at or after each target time, as full-size RGB."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        targets = policy.target_times(duration)
        kept = []
        for frame in container.decode(stream):
            if len(kept) < len(targets) and frame.time >= targets[len(kept)] - 1e-3:
                kept.append(frame.to_ndarray(format="rgb24"))
    kept += [kept[-1]] * (len(targets) - len(kept))
    return np.stack(kept)
