"""Load generators against the worker's input topic: a backlog (steady throughput) and an open loop (latency).

Every event has a fresh video_id, goes to partitions in turn (so two workers get equal shares) and
records its send time, which the collector's arrival time is compared with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.kafka_io import RecordCollector, make_event, producer
from bench.stats import percentiles, summarise
from bench.videos import Video


@dataclass
class Load:
    bootstrap: str
    topic: str
    partitions: int
    videos: list[Video]
    collector: RecordCollector
    #: Makes ids unique across sessions that share the output topics (no dash: ids are split on it).
    session: str = "s"
    sent: dict[str, float] = field(default_factory=dict)
    #: Number of the next event: it picks the video (cycling over the set) and the partition.
    sequence: int = 0

    def __post_init__(self) -> None:
        self._producer = producer(self.bootstrap, linger_ms=0)

    def close(self) -> None:
        self._producer.close()

    def send(self, count: int, rate: float | None = None, tag: str = "ev") -> list[str]:
        """Send ``count`` events cycling over the video set: at once, or at a fixed ``rate`` per second."""
        ids, started = [], time.perf_counter()
        for index in range(count):
            if rate:
                _sleep_until(started + index / rate)
            number, self.sequence = self.sequence, self.sequence + 1
            video = self.videos[number % len(self.videos)]
            event = make_event(video, f"{self.session}{tag}-{number}-{video.name}")
            self.sent[event["video_id"]] = event["bench_sent_at"]
            self._producer.send(
                self.topic, key=event["video_id"], value=event, partition=number % self.partitions
            )
            ids.append(event["video_id"])
        self._producer.flush()
        return ids

    def latency(self, rate: float, count: int, timeout_s: float, discard: int = 0) -> dict:
        """Open loop at ``rate``: event→tag milliseconds overall and per video, plus the worker's stages.

        A tag counts from its record's CreateTime (the worker's producer, this host's clock): when the
        worker published it, not when a consumer happened to fetch it.

        The first ``discard`` events (the level's warm-up, before its queue reaches steady state) are
        sent and answered but left out of the figures.
        """
        with self.collector.paced():  # a collector fetching every 10 ms would take ~0.25 cores from the worker
            ids = self.send(count, rate=rate, tag=f"rate{rate:.2f}")
            complete = self.collector.wait_for(ids, timeout_s)
        done = [i for i in ids[discard:] if i in self.collector.produced]
        millis = {i: (self.collector.produced[i] - self.sent[i]) * 1000 for i in done}
        by_video: dict[str, list[float]] = {}
        for video_id, ms in millis.items():
            by_video.setdefault(video_id.split("-", 2)[2], []).append(ms)
        return {
            "rate_per_s": round(rate, 3),
            "events": count - discard,
            "discarded_warm_up_events": discard,
            "answered": len(done),
            "complete": complete,
            "failed": sum(i in self.collector.failed for i in done),
            "latency_ms": percentiles(list(millis.values())) if millis else None,
            "latency_ms_by_video": {v: percentiles(ms, (50, 99)) for v, ms in sorted(by_video.items())},
            "worker_stage_ms": self.stage_medians(done),
        }

    def stage_medians(self, ids: list[str]) -> dict:
        """Medians of the ``latency_ms`` breakdown the worker writes into each tag record."""
        stages: dict[str, list[float]] = {}
        for video_id in ids:
            for stage, ms in (self.collector.records.get(video_id, {}).get("latency_ms") or {}).items():
                stages.setdefault(stage, []).append(float(ms))
        return {stage: summarise(values, 1)["median"] for stage, values in stages.items()}


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)
