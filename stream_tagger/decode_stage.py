"""The decode stage of one event (fetch its video, decode the early frames), here or in a decode process.

``fetch_and_decode`` is one attempt in this process. :class:`DecodeProcesses` runs the stage — the
same function, with the same URI policy, limits and retries, built from the same settings — in child
processes, one per decode thread, so that decoding never waits for the GIL of the worker process,
where the Kafka client, the producer, inference and serialisation run in Python threads. Every
byte a source yields passes through Python (``sources.stream.RangeStream`` reads for FFmpeg), so in a
thread each read competes for that GIL too. The frames of one video come back pickled through a
socket (~0.3 MB for the default engines), a copy that costs far less than one decoded frame.

Faults, and how each is handled:

- an EventError in a child (bad input, fetch failure, decode timeout) is raised again in the parent,
  with its code and attempts, and becomes the event's DLQ record as it would in a thread;
- a bug (any other exception) in a child raises RuntimeError in the parent: a DLQ record with
  ``decode_failed`` and the child's traceback, and the child goes on, as a decode thread would;
- a child that exits (killed, out of memory, FFmpeg crashed) raises :class:`DecodeProcessDied`,
  which the pipeline treats like a dead thread: logged, counted, fatal to the worker (exit 1) and
  the events in flight are redelivered; idle children are checked every second, so a dead one is
  noticed without waiting for the next event;
- a child that does not answer within every deadline it could legitimately need (a native call that
  never returns) is killed and replaced, and its event fails with ``timeout`` — which a decode thread
  stuck in native code could never do.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from stream_tagger.decode import DecodedClip, Decoder, make_decoder
from stream_tagger.errors import DecodeProcessDied, DecodeTimeout, EventError
from stream_tagger.records import StageTimes
from stream_tagger.sampling import FramePolicy
from stream_tagger.settings import Settings
from stream_tagger.sources.policy import UriPolicy
from stream_tagger.sources.retry import RetryPolicy

log = logging.getLogger(__name__)

#: How often an idle pipeline checks that its decode processes are alive.
IDLE_CHECK_S = 1.0
#: A new decode process must say it is ready (imports done, stage built) within this long.
STARTUP_S = 60.0


def fetch_and_decode(
    uri_policy: UriPolicy, decoder: Decoder, uri: str, policies: Sequence[FramePolicy], times: StageTimes
) -> DecodedClip:
    """One attempt: open the URI (its first block read), decode while ranges are fetched, close.

    The reads made while decoding are held to the fetch deadline and to the decode's own; an error
    a read raised wins over whatever PyAV made of it (a partial video must never become a tag).
    """
    with uri_policy.open(uri) as stream:
        times.decode = time.monotonic()
        timeout_s = decoder.limits.timeout_s
        stream.budget.cap_deadline(times.decode + timeout_s, f"decode_timeout_s={timeout_s:g}")
        try:
            clip = decoder.decode(stream, policies)
        except EventError:
            stream.raise_failure()
            raise
        stream.raise_failure()
    return dataclasses.replace(clip, bytes_fetched=stream.bytes_fetched)


@dataclass(frozen=True)
class FetchStats:
    """What one source stream read (``Metrics.observe_fetch`` takes it like the stream itself)."""

    scheme: str
    bytes_fetched: int
    requests: int


def reply_deadline_s(settings: Settings) -> float:
    """Longest a legitimate decode stage can take: every attempt's fetch and decode deadlines, the
    backoffs between attempts, and a margin for starting up."""
    attempt = settings.fetch_timeout_s + settings.decode_timeout_s
    return settings.retry_attempts * (attempt + settings.retry_backoff_max_s) + 5.0


class DecodeProcesses:
    """``processes`` children, each running the decode stage; ``read`` borrows an idle one."""

    def __init__(
        self,
        settings: Settings,
        processes: int,
        on_fetch: Callable[[FetchStats], None] | None = None,
        deadline_s: float | None = None,
    ) -> None:
        self._settings = settings
        self._on_fetch = on_fetch or (lambda stats: None)
        self._deadline_s = deadline_s if deadline_s is not None else reply_deadline_s(settings)
        self._lock = threading.Lock()
        self._children = [_Child.start(settings) for _ in range(processes)]
        self._idle: queue.Queue[_Child] = queue.Queue()
        for child in self._children:
            self._idle.put(child)

    @property
    def pids(self) -> list[int]:
        return [child.process.pid for child in self._children]

    def read(self, uri: str, policies: Sequence[FramePolicy], times: StageTimes) -> DecodedClip:
        """Fetch and decode ``uri`` in a child (retries there). Raises what the stage raised there,
        DecodeTimeout when the child had to be killed, DecodeProcessDied when it exited."""
        child = self._idle.get()
        try:
            kind, value, decode_started, stats = child.ask((uri, list(policies)), self._deadline_s)
        except _NoAnswer:
            child = self._replace(child)
            raise DecodeTimeout(f"the decode process gave no answer within {self._deadline_s:.0f}s; replaced") from None
        finally:
            self._idle.put(child)
        for item in stats:
            self._on_fetch(item)
        if decode_started is not None:
            times.decode = decode_started  # CLOCK_MONOTONIC: one clock for every process of the host
        if kind == "ok":
            return value
        if kind == "error":
            raise value
        raise RuntimeError(f"decode process: {value}")

    def check(self) -> None:
        """Raise DecodeProcessDied when a child has exited."""
        with self._lock:
            for child in self._children:
                child.check()

    def close(self) -> None:
        with self._lock:
            for child in self._children:
                child.stop()

    def _replace(self, stuck: _Child) -> _Child:
        fresh = _Child.start(self._settings)
        with self._lock:
            self._children[self._children.index(stuck)] = fresh
        stuck.stop(grace_s=0)
        log.error("decode process replaced", extra={"pid": stuck.process.pid, "deadline_s": self._deadline_s})
        return fresh


class _NoAnswer(Exception):
    """Raised inside this module when a child is past its deadline."""


class _Child:
    """One decode process and the parent's end of its socket."""

    def __init__(self, process: subprocess.Popen, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self._ready = False

    @classmethod
    def start(cls, settings: Settings) -> _Child:
        parent_end, child_end = socket.socketpair()
        with child_end:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        child = cls(process, Connection(parent_end.detach()))
        child._send(settings)
        return child

    def ask(self, request: tuple, deadline_s: float) -> tuple:
        """Send ``request`` and wait for its reply; the deadline starts once the child is ready."""
        try:
            if not self._ready:
                if not self.conn.poll(STARTUP_S) or self.conn.recv() != "ready":
                    raise DecodeProcessDied(f"decode process {self.process.pid} did not start within {STARTUP_S:.0f}s")
                self._ready = True
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        self._send(request)
        try:
            if not self.conn.poll(deadline_s):
                raise _NoAnswer
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc

    def check(self) -> None:
        if self.process.poll() is not None:
            raise self._died()

    def stop(self, grace_s: float = 1.0) -> None:
        self.conn.close()  # the child reads EOF and exits
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _send(self, message: Any) -> None:
        try:
            self.conn.send(message)
        except OSError as exc:
            raise self._died() from exc

    def _died(self) -> DecodeProcessDied:
        try:
            status = self.process.wait(5)
        except subprocess.TimeoutExpired:
            status = None
        return DecodeProcessDied(f"decode process {self.process.pid} exited (status {status})")


# ---- the child ------------------------------------------------------------------------------------
def _serve(conn: Connection) -> None:
    """Answer requests until the parent closes the socket."""
    settings: Settings = conn.recv()
    stats: list[FetchStats] = []
    uri_policy = UriPolicy.from_settings(
        settings, on_close=lambda s: stats.append(FetchStats(s.scheme, s.bytes_fetched, s.requests))
    )
    decoder = make_decoder(settings.decoder, settings.decode_limits())
    retry = RetryPolicy(settings.retry_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s)
    conn.send("ready")
    while True:
        try:
            uri, policies = conn.recv()
        except EOFError:
            return
        stats.clear()
        times = StageTimes()
        try:
            clip, _ = retry.run(lambda: fetch_and_decode(uri_policy, decoder, uri, policies, times))  # noqa: B023
            reply: tuple = ("ok", clip, times.decode, list(stats))
        except EventError as exc:
            reply = ("error", exc, times.decode, list(stats))
        except Exception as exc:  # noqa: BLE001 (a bug on one input: reported with its traceback, the child goes on)
            reply = ("bug", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}", times.decode, list(stats))
        try:
            conn.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an error that cannot travel
            conn.send(("bug", f"unpicklable {reply[0]} reply: {type(exc).__name__}: {exc}", times.decode, list(stats)))


def _main(argv: list[str]) -> int:
    # Signals are for the worker: it drains and closes our socket; Ctrl-C in a terminal must not kill us first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = Connection(int(argv[0]))
    try:
        _serve(conn)
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the parent went away
        pass
    return 0


if __name__ == "__main__":  # run as ``python -m``: serve from the imported module, so that what we
    from stream_tagger.decode_stage import _main as main  # pickle names it, not ``__main__``

    sys.exit(main(sys.argv[1:]))
