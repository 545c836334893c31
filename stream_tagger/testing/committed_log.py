"""What a ``read_committed`` consumer is owed: the records of a topic minus those of aborted transactions.

Tansu 0.6.0 keeps the last stable offset (an open transaction hides what follows it), but its Fetch
responses never list the aborted transactions: its storage engines stub that out (upstream added the
missing ``Storage::aborted_transactions`` as stubs returning nothing in nisshi-io/nisshi#698). A
stock ``read_committed`` client (kafka-python, librdkafka) therefore shows the records of an aborted
transaction as if they were committed. Kafka brokers do list them.

This reader gets the same answer a ``read_committed`` consumer gets from Kafka, from the log itself:
it fetches every batch with ``read_uncommitted`` and applies the commit and abort markers that the
broker writes at the end of each transaction (Kafka's log format: a transactional batch belongs to
the next control batch of the same producer id in that partition). Records of a transaction still
open when the log ends are left out, as a ``read_committed`` consumer would not see them yet.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.record import MemoryRecords

#: Fetch v4 is the first with an isolation level; 0 = read_uncommitted (every batch, markers too).
FETCH_VERSION = 4
READ_UNCOMMITTED = 0


@dataclass(frozen=True)
class LogRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class CommittedView:
    """One topic as ``read_committed`` sees it, and what the markers removed."""

    committed: list[LogRecord] = field(default_factory=list)
    aborted: list[LogRecord] = field(default_factory=list)
    still_open: list[LogRecord] = field(default_factory=list)


def read_committed_log(address: tuple[str, int], topic: str, partitions: int, timeout_s: float = 10.0) -> CommittedView:
    """Every partition of ``topic`` from offset 0 to its high watermark, split by transaction outcome.

    ``address`` is a plaintext listener of the broker (``LocalBroker.plaintext_address``).
    """
    view = CommittedView()
    with socket.create_connection(address, timeout=timeout_s) as sock:
        for partition in range(partitions):
            _split_partition(_batches(sock, topic, partition), partition, view)
    return view


def _split_partition(batches: list, partition: int, view: CommittedView) -> None:
    open_transactions: dict[int, list[LogRecord]] = {}
    for batch in batches:
        entries = list(batch)  # a batch iterates once
        if batch.is_control_batch:
            (marker,) = entries
            ended = open_transactions.pop(batch.producer_id, [])
            (view.committed if marker.commit else view.aborted).extend(ended)
            continue
        records = [LogRecord(partition, r.offset, r.key, r.value) for r in entries]
        if batch.is_transactional:
            open_transactions.setdefault(batch.producer_id, []).extend(records)
        else:
            view.committed.extend(records)
    for records in open_transactions.values():
        view.still_open.extend(records)


def _batches(sock: socket.socket, topic: str, partition: int) -> list:
    batches: list = []
    offset, correlation_id = 0, 0
    while True:
        correlation_id += 1
        response = _fetch(sock, topic, partition, offset, correlation_id)
        data = response.responses[0].partitions[0]
        if data.error_code:
            raise RuntimeError(f"fetch {topic}/{partition}@{offset}: error code {data.error_code}")
        records = MemoryRecords(bytes(data.records or b""))
        fetched = 0
        while (batch := records.next_batch()) is not None:
            batches.append(batch)
            offset = batch.next_offset
            fetched += 1
        if fetched == 0 or offset >= data.high_watermark:
            return batches


def _fetch(sock: socket.socket, topic: str, partition: int, offset: int, correlation_id: int) -> FetchResponse:
    request = FetchRequest(
        version=FETCH_VERSION, replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=16 * 1024 * 1024,
        isolation_level=READ_UNCOMMITTED,
        topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
            FetchRequest.FetchTopic.FetchPartition(partition=partition, fetch_offset=offset,
                                                   partition_max_bytes=8 * 1024 * 1024)])],
    )
    request.with_header(correlation_id=correlation_id, client_id="committed-log-reader")
    sock.sendall(request.encode(header=True, framed=True))
    (size,) = struct.unpack(">i", _read_exactly(sock, 4))
    return FetchResponse.decode(_read_exactly(sock, size), version=FETCH_VERSION, header=True)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("the broker closed the connection mid-response")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
