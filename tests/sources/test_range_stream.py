"""The RangeStream's own rules, over local files: seeks never fetch, the cache serves seeks back, the
read-ahead never spends the budget a read needs, and a read error survives PyAV swallowing it."""

from __future__ import annotations

import io

import pytest
from sources_helpers import make_policy, tag

from stream_tagger.decode import make_decoder
from stream_tagger.errors import EventError, FetchFailed, TooLarge
from stream_tagger.sampling import SamplingPolicy
from stream_tagger.sources.local import LocalReader
from stream_tagger.sources.stream import FetchBudget, RangeStream

POLICY = SamplingPolicy(frames=8, height=64, width=64, seconds=1.0, max_seconds=2.0)


class CountingReader(LocalReader):
    """A LocalReader that records each range it was asked for, and can fail from the n-th on."""

    def __init__(self, path, budget, fail_from: int | None = None) -> None:
        super().__init__(path, budget)
        self.ranges: list[tuple[int, int]] = []
        self._fail_from = fail_from

    def read_range(self, start: int, end: int) -> bytes:
        self.ranges.append((start, end))
        if self._fail_from is not None and len(self.ranges) >= self._fail_from:
            raise FetchFailed("connection reset by peer", retryable=True)
        return super().read_range(start, end)


def stream_over(path, readahead=64 * 1024, max_bytes=10**9, fail_from=None) -> tuple[RangeStream, CountingReader]:
    budget = FetchBudget.starting_now(max_bytes, 10.0)
    reader = CountingReader(path, budget, fail_from)
    return RangeStream(reader, budget, readahead), reader


def test_seeking_never_fetches(upload_files):
    stream, reader = stream_over(upload_files.path("two_hours.mp4"))
    stream.read(1)
    assert reader.ranges == [(0, 64 * 1024)]
    assert stream.seek(0, io.SEEK_END) == upload_files.path("two_hours.mp4").stat().st_size
    stream.seek(10_000_000)
    assert reader.ranges == [(0, 64 * 1024)]


def test_a_seek_back_to_a_cached_block_costs_no_request(upload_files):
    stream, reader = stream_over(upload_files.path("two_hours_end.mp4"))
    head = stream.read(100)
    stream.seek(-1000, io.SEEK_END)
    stream.read(1000)
    stream.seek(0)
    assert stream.read(100) == head
    assert len(reader.ranges) == 2


def test_sequential_misses_grow_the_read_ahead_and_a_seek_resets_it(upload_files):
    stream, reader = stream_over(upload_files.path("two_hours.mp4"), readahead=1000)
    for _ in range(4):
        stream.seek(reader.ranges[-1][1] if reader.ranges else 0)
        stream.read(1)
    stream.seek(50_000_000)
    stream.read(1)
    assert [end - start for start, end in reader.ranges] == [1000, 2000, 4000, 8000, 1000]


def test_read_ahead_is_clipped_to_the_budget_left_and_the_read_itself_is_refused_past_it(upload_files):
    stream, reader = stream_over(upload_files.path("two_hours.mp4"), readahead=1_000_000, max_bytes=5000)
    assert len(stream.read(4000)) == 4000
    assert reader.ranges == [(0, 5000)]
    assert len(stream.read(1000)) == 1000  # from the cache
    with pytest.raises(TooLarge):
        stream.read(1)


def test_a_read_error_pyav_swallowed_is_still_raised(upload_files):
    # Given a stream whose reads fail from the 3rd range on (inside the 1 MB moov), decoded by PyAV
    stream, _ = stream_over(upload_files.path("two_hours.mp4"), readahead=8 * 1024, fail_from=3)

    # When PyAV decodes it (it may raise, or carry on as if the file had ended)
    try:
        make_decoder("pyav").decode(stream, [POLICY])
    except EventError:
        pass

    # Then the stream kept the first error, for the tagger to raise
    assert isinstance(stream.failure, FetchFailed)
    with pytest.raises(FetchFailed):
        stream.raise_failure()


def test_file_uri_records_carry_the_bytes_read(upload_files, tagger_for):
    record = tag(tagger_for(make_policy(upload_files)), upload_files.path("two_hours.mp4").as_uri())
    assert 0 < record["decode"]["bytes_fetched"] < 4_000_000


@pytest.mark.parametrize("uri", [
    "file:///media/a%00b.mp4",
    "file:///media/a\x00b.mp4",
    "file:///media/a\nb.mp4",
    "file:///media/%ED%B3%BF.mp4",  # a lone surrogate, percent-encoded
    "file:///media/%FF.mp4",  # not UTF-8
    "http://127.0.0.1:99999/x.mp4",
    "http://127.0.0.1:port/x.mp4",
    "http://127.0.0.1/a b.mp4",
])
def test_unusable_paths_and_urls_are_uri_forbidden(upload_files, tagger_for, uri):
    with pytest.raises(EventError) as caught:
        tag(tagger_for(make_policy(upload_files)), uri)
    assert caught.value.code == "uri_forbidden", caught.value


def test_local_file_over_max_fetch_bytes_is_tagged_from_its_early_packets(upload_files, tagger_for):
    # Given a 1.1 GB file under a root and a 16 MB limit
    tagger = tagger_for(make_policy(upload_files, max_bytes=16_000_000))
    record = tag(tagger, upload_files.path("big_end.mp4").as_uri())
    assert record["decode"]["bytes_fetched"] < 1_000_000
