"""The dynamic batcher closes a batch at max size, or when max wait has passed after its first item."""

from __future__ import annotations

import queue
import threading

from stream_tagger.batcher import Batcher


def test_full_batch_closes_at_max_size_and_leaves_the_rest():
    source: queue.Queue[int] = queue.Queue()
    for item in range(10):
        source.put(item)
    batcher = Batcher(source, max_size=4, max_wait_s=60.0)  # the wait must not matter when items are there

    assert batcher.next_batch() == [0, 1, 2, 3]
    assert batcher.next_batch() == [4, 5, 6, 7]
    assert source.qsize() == 2


def test_partial_batch_closes_when_max_wait_passes():
    # Given one item and nothing more coming
    source: queue.Queue[int] = queue.Queue()
    source.put(1)
    batcher = Batcher(source, max_size=8, max_wait_s=0.05)

    # Then the batch closes with the one item instead of waiting for eight
    assert batcher.next_batch() == [1]


def test_items_arriving_within_the_wait_join_the_batch():
    source: queue.Queue[int] = queue.Queue()
    source.put(1)
    arrived = threading.Event()

    def late_producer() -> None:
        source.put(2)
        arrived.set()

    threading.Timer(0.01, late_producer).start()
    batch = Batcher(source, max_size=2, max_wait_s=30.0).next_batch()
    assert arrived.is_set() and batch == [1, 2]


def test_empty_source_gives_an_empty_batch():
    assert Batcher(queue.Queue(), max_size=4, max_wait_s=0.01).next_batch(idle_timeout_s=0.01) == []
