"""Fixtures of the delivery tests: a durable broker that can be killed and restarted, tiny engines, one
small clip, and `stream-tagger run` processes (helpers: delivery_helpers.py).

The broker here is not the session's memory-only one: it keeps its log in an S3 API (moto's server),
so a SIGKILL and a restart on the same address lose nothing acknowledged. Each test module gets its
own, since these tests kill and restart it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from delivery_helpers import Worker

from stream_tagger.engines.tiny import write_tiny_repository
from stream_tagger.testing.broker import LocalBroker, free_port


@pytest.fixture(scope="module")
def durable_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with LocalBroker(durable=True, log_path=log_path) as broker:
        yield broker


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_repository(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stream_tagger.testing.clips import write_clip

    folder = tmp_path_factory.mktemp("media")
    write_clip(folder / "clip.mp4", 0, seconds=1.0, size=64)
    return folder


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    """``start_worker(env)``: a `stream-tagger run` process; every one still alive is killed afterwards."""
    workers: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        env = {**env, "STREAM_TAGGER_METRICS_PORT": str(free_port())}  # one port per process
        workers.append(Worker(env, tmp_path / f"worker-{len(workers)}.log"))
        return workers[-1]

    yield start
    for worker in workers:
        worker.kill()


