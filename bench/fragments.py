"""What the fragments input (native-resolution quality patches, issue 18) costs the worker.

Three figures from one run:

- **cost per video**: decode milliseconds of every bench video with the served engines' policies
  ("without") and with the fragment policy added ("with"), interleaved per repetition, plus the
  time of cutting one mosaic out of a decoded frame at each size of the set;
- **tagger CPU per video**: the worker's own ``Tagger`` (decode on 2 threads, then every engine on
  batches of 8), without Kafka, CPU seconds of this process per video, without/with alternating:
  what the fragments cost in total, and the figure a busy shared machine disturbs least;
- **worker throughput**: the real worker, through the real broker, serving an engine repository
  whose classifier has no fragments input ("without": today's input) and one whose classifier has
  it ("with"), sessions in the order without, with, without, with, so drift hits both alike.

"With" is the newest classifier that declares a fragments input. When the repository has none yet,
a stand-in is published into the bench cache: the newest classifier graph with the fragment quality
student (untrained weights, the architecture that will be trained) attached, which costs what a
trained one costs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench import cpu, steady, worker_bench
from bench.engines import newest_engines
from bench.kafka_io import broker
from bench.stats import ratio, summarise
from bench.videos import CACHE_DIR, Video
from stream_tagger.decode import make_decoder
from stream_tagger.decode.fragments import cut_fragments
from stream_tagger.engines.manifest import MODEL_NAME, EngineManifest, FragmentsFeed, FramesFeed
from stream_tagger.engines.repository import list_versions, publish_version
from stream_tagger.sampling import FragmentPolicy

#: The fragment policy of a stand-in engine (the one the classifier's quality branch is trained on).
STAND_IN_FRAGMENTS = FragmentPolicy(frames=4, grid=7, patch=32, seconds=1.0, max_seconds=2.0)
#: The stand-in's quality trunk: the trainer's default (``stream-tagger-train train quality --trunk``).
STAND_IN_TRUNK = "energy"
SESSION_ORDER = ("without", "with", "without", "with")


def measure(videos: list[Video], engines_dir: Path, repetitions: int, quick: bool, bootstrap: str | None,
            overrides: dict[str, str]) -> dict:
    repositories, fragment_policy, stand_in = engine_pair(engines_dir, CACHE_DIR / f"fragments-{STAND_IN_TRUNK}")
    without = _served_policies(repositories["without"])
    cost = decode_cost(videos, without, fragment_policy, repetitions)
    tagger = tagger_cpu(videos, repositories, repetitions)
    worker = worker_throughput(videos, repositories, repetitions, quick, bootstrap, overrides)
    return {
        "fragment_policy": fragment_policy.model_dump(),
        "classifier": {arm: _classifier_ref(path) for arm, path in repositories.items()},
        "stand_in": stand_in,
        "cost": cost,
        "tagger_cpu": tagger,
        "worker": worker,
        "throughput_with_over_without": ratio(worker["with"]["videos_per_s"], worker["without"]["videos_per_s"]),
    }


# ---- the two repositories ----------------------------------------------------------------------
def engine_pair(engines_dir: Path, scratch: Path) -> tuple[dict[str, Path], FragmentPolicy, bool]:
    """Repositories (symlinks to the real version folders) that differ only in their classifier."""
    versions = {number: EngineManifest.load(path) for number, path in list_versions(engines_dir / "classifier")}
    with_fragments = [n for n, m in versions.items() if _fragments(m) is not None]
    plain = [n for n, m in versions.items() if _fragments(m) is None]
    if not plain:
        raise RuntimeError(f"{engines_dir}/classifier has no version without a fragments input to compare with")
    base = engines_dir / "classifier" / str(max(plain))
    stand_in = not with_fragments
    if stand_in:
        fragments_dir = _stand_in(base, scratch / "stand-in")
    else:
        fragments_dir = engines_dir / "classifier" / str(max(with_fragments))
    repositories = {}
    for arm, classifier in (("without", base), ("with", fragments_dir)):
        root = repositories[arm] = scratch / arm
        shutil.rmtree(root, ignore_errors=True)  # symlinks only: the version folders stay
        _link_others(engines_dir, root)
        _link(classifier, root / "classifier" / classifier.name)
    return repositories, _fragments(EngineManifest.load(fragments_dir)), stand_in


def _fragments(manifest: EngineManifest) -> FragmentPolicy | None:
    return next((s.feed.fragments for s in manifest.inputs if isinstance(s.feed, FragmentsFeed)), None)


def _link_others(engines_dir: Path, root: Path) -> None:
    for engine in newest_engines(engines_dir):
        if engine.name != "classifier":
            _link(engine.version_dir, root / engine.name / engine.version_dir.name)


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=True)


def _stand_in(base: Path, root: Path) -> Path:
    """The base classifier with an untrained fragment quality student attached (made once)."""
    newest = list_versions(root / "classifier")
    if newest:
        return newest[-1][1]
    from trainer.export import export_onnx  # torch only for the stand-in
    from trainer.quality.compose import attach_quality
    from trainer.quality.nets import FragmentQualityStudent, ServingQuality

    manifest = EngineManifest.load(base)
    policy = STAND_IN_FRAGMENTS
    with tempfile.TemporaryDirectory() as folder:
        quality = Path(folder) / "quality.onnx"
        model = ServingQuality(FragmentQualityStudent(len(manifest.labels["quality"]), 64, trunk=STAND_IN_TRUNK,
                                                      grid=policy.grid, patch=policy.patch))
        shape = (2, policy.frames, policy.height, policy.width, 3)
        export_onnx(model, {"fragments": np.zeros(shape, np.uint8)}, ["quality_probs"], quality)
        merged = attach_quality(base / MODEL_NAME, quality, Path(folder) / MODEL_NAME)
        frames = next(s.feed for s in manifest.inputs if isinstance(s.feed, FramesFeed))
        return publish_version(
            root, "classifier", {MODEL_NAME: merged},
            feeds={"frames": frames, "fragments": FragmentsFeed(fragments=policy)},
            labels=manifest.labels, preprocessing=manifest.preprocessing, serving=manifest.serving,
            training={"command": "bench.fragments stand-in (untrained quality branch)", "seed": 0,
                      "data_hash": "none"},
        )


def _served_policies(root: Path) -> list:
    return list(dict.fromkeys(p for engine in newest_engines(root) for p in engine.manifest.sampling_policies))


def _classifier_ref(root: Path) -> str:
    (version,) = (root / "classifier").iterdir()
    return EngineManifest.load(version).ref


# ---- cost per video ----------------------------------------------------------------------------
def decode_cost(videos: list[Video], served: list, fragments: FragmentPolicy, repetitions: int) -> dict:
    """Decode CPU and wall ms per video without and with the fragment policy (interleaved), and the
    cut alone. CPU time (this process, every thread) is the figure that a busy shared machine
    disturbs least; wall time is reported beside it."""
    arms = {"without": list(served), "with": [*served, fragments]}
    times = {v.name: {(arm, clock): [] for arm in arms for clock in ("cpu", "wall")} for v in videos}
    for rep in range(repetitions):
        for video in videos:
            for arm in (("without", "with") if rep % 2 == 0 else ("with", "without")):
                cpu_ms, wall_ms = _decode_ms(video.path, arms[arm])
                times[video.name][(arm, "cpu")].append(cpu_ms)
                times[video.name][(arm, "wall")].append(wall_ms)
    per_video = {}
    for video in videos:
        figures = {f"{arm}_{clock}_ms": summarise(values, 2) for (arm, clock), values in times[video.name].items()}
        per_video[video.name] = figures | {
            "added_cpu_ms": round(figures["with_cpu_ms"]["median"] - figures["without_cpu_ms"]["median"], 2),
            "added_wall_ms": round(figures["with_wall_ms"]["median"] - figures["without_wall_ms"]["median"], 2),
            "size": f"{video.width}x{video.height}"}
    return {"per_video": per_video, "cut_ms_per_frame": _cut_cost(videos, fragments, repetitions),
            "fragment_frames_per_video": fragments.frames}


def _decode_ms(path: Path, policies: list) -> tuple[float, float]:
    decoder = make_decoder("pyav")
    cpu_started, started = time.process_time(), time.perf_counter()
    decoder.decode(str(path), policies)
    return (time.process_time() - cpu_started) * 1000, (time.perf_counter() - started) * 1000


def _cut_cost(videos: list[Video], fragments: FragmentPolicy, repetitions: int) -> dict:
    """Milliseconds of ``cut_fragments`` on a decoded frame, per frame size of the set (200 cuts a figure)."""
    out = {}
    for video in {(v.width, v.height): v for v in videos}.values():
        with av.open(str(video.path)) as container:
            frame = next(container.decode(video=0))
        cut_fragments(frame, fragments)  # the layout is cached per stream size, as in the worker
        figures = []
        for _ in range(repetitions):
            started = time.perf_counter()
            for _ in range(200):
                cut_fragments(frame, fragments)
            figures.append((time.perf_counter() - started) / 200 * 1000)
        out[f"{video.width}x{video.height}"] = summarise(figures, 3)
    return out


# ---- the tagger's CPU per video ----------------------------------------------------------------
def tagger_cpu(videos: list[Video], repositories: dict[str, Path], repetitions: int, batch: int = 8) -> dict:
    """CPU ms per video of Tagger.prepare (2 threads) and Tagger.infer (batches), arms alternating."""
    from concurrent.futures import ThreadPoolExecutor

    from stream_tagger.engines.repository import EngineRepository
    from stream_tagger.records import InputEvent, StageTimes
    from stream_tagger.sources.policy import UriPolicy
    from stream_tagger.sources.retry import RetryPolicy
    from stream_tagger.tagger import Tagger

    uri_policy = UriPolicy((videos[0].path.parent.resolve(),), frozenset(), 10**10, 30.0)
    taggers = {}
    for arm, root in repositories.items():
        repository = EngineRepository(root, "onnxruntime")
        repository.load()
        taggers[arm] = Tagger(repository, make_decoder("pyav"), uri_policy, RetryPolicy(1, 0.0, 0.0), "bench")
    events = [InputEvent(video_id=v.name, uri=v.path.resolve().as_uri(), title="bench") for v in videos] * 2
    figures: dict[str, dict[str, list[float]]] = {arm: {"decode": [], "infer": [], "total": []} for arm in taggers}
    try:
        for rep in range(repetitions):
            for arm in (("without", "with") if rep % 2 == 0 else ("with", "without")):
                tagger = taggers[arm]
                started = time.process_time()
                with ThreadPoolExecutor(2) as pool:
                    prepared = list(pool.map(lambda event, t=tagger: t.prepare(event, None, StageTimes()), events))
                decoded = time.process_time()
                for i in range(0, len(prepared), batch):
                    tagger.infer(prepared[i:i + batch])
                done = time.process_time()
                for name, seconds in (("decode", decoded - started), ("infer", done - decoded), ("total", done - started)):
                    figures[arm][name].append(seconds * 1000 / len(events))
    finally:
        for tagger in taggers.values():
            tagger.close()
    out = {arm: {f"{name}_cpu_ms_per_video": summarise(values, 2) for name, values in parts.items()}
           for arm, parts in figures.items()}
    out["total_with_over_without"] = ratio(out["with"]["total_cpu_ms_per_video"], out["without"]["total_cpu_ms_per_video"])
    out["videos_per_repetition"] = len(events)
    return out


# ---- worker throughput -------------------------------------------------------------------------
def worker_throughput(videos: list[Video], repositories: dict[str, Path], repetitions: int, quick: bool,
                      bootstrap: str | None, overrides: dict[str, str]) -> dict:
    """Steady-state videos/s of one worker per session, sessions alternating without/with."""
    window, skip = (40, 8) if quick else (steady.WINDOW_EVENTS, steady.SKIP)
    events = steady.repetition_events(window, skip)
    per_session = max(1, repetitions // 2)
    reps: dict[str, list[dict]] = {arm: [] for arm in repositories}
    with broker(bootstrap) as kafka:
        worker_bench.create_topics(kafka)
        for index, arm in enumerate(SESSION_ORDER):
            setup = worker_bench.Setup(kafka, videos, repositories[arm], CACHE_DIR / "logs", overrides)
            timeout_s = max(setup.timeout_s, float(events))
            with worker_bench.workers(setup, 1, f"fragments-{arm}-{index}") as (procs, load):
                groups = cpu.Groups(worker=procs[0].pid, broker=getattr(kafka, "pid", None))
                measured = worker_bench.throughput(load, per_session, events, skip, timeout_s, groups)
            reps[arm] += measured["repetitions"]
    return {arm: {"videos_per_s": summarise([r["videos_per_s"] for r in values]),
                  "failed": sum(r["failed"] for r in values), "events_per_repetition": events,
                  "skipped_at_each_end": skip}
            for arm, values in reps.items()} | {"session_order": list(SESSION_ORDER)}
