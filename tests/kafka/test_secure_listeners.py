"""TLS and SASL against a real listener: the right settings pass; each wrong one fails fast and says
which ``STREAM_TAGGER_*`` setting to fix (the probe of stream_tagger/kafka/connection.py, then the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from stream_tagger.errors import ConfigError
from stream_tagger.kafka.connection import check_brokers
from stream_tagger.settings import Settings

#: Each misconfiguration must be reported well within this (the probe's own timeout is 5 s).
PROBE_TIMEOUT_S = 5.0
CLI_TIMEOUT_S = 60.0


SASL_USER, SASL_PASSWORD = "tagger", "correct horse battery staple"  # what tests/kafka/conftest.py sets up


def sasl_ssl_env(broker, tls_files, **overrides: str) -> dict[str, str]:
    return {
        "STREAM_TAGGER_BROKERS": broker.bootstrap,
        "STREAM_TAGGER_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_TAGGER_SSL_CAFILE": str(tls_files.cafile),
        "STREAM_TAGGER_SASL_MECHANISM": "SCRAM-SHA-256",
        "STREAM_TAGGER_SASL_USERNAME": SASL_USER,
        "STREAM_TAGGER_SASL_PASSWORD": SASL_PASSWORD,
        **overrides,
    }


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**{key.removeprefix("STREAM_TAGGER_").lower(): value for key, value in env.items()})


def probe_error(env: dict[str, str]) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        check_brokers(settings_from(env), PROBE_TIMEOUT_S)
    return str(raised.value), time.monotonic() - started


def test_the_right_settings_pass_the_probe(secure_broker, tls_broker, tls_files, sasl_login):
    assert sasl_login == (SASL_USER, SASL_PASSWORD)
    check_brokers(settings_from(sasl_ssl_env(secure_broker, tls_files)), PROBE_TIMEOUT_S)
    check_brokers(settings_from(sasl_ssl_env(secure_broker, tls_files, STREAM_TAGGER_SASL_MECHANISM="SCRAM-SHA-512")),
                  PROBE_TIMEOUT_S)
    check_brokers(Settings(brokers=tls_broker.bootstrap, security_protocol="SSL", ssl_cafile=tls_files.cafile),
                  PROBE_TIMEOUT_S)


def test_wrong_ca_names_ssl_cafile(secure_broker, tls_files):
    message, took = probe_error(sasl_ssl_env(secure_broker, tls_files, STREAM_TAGGER_SSL_CAFILE=str(tls_files.other_cafile)))
    assert "STREAM_TAGGER_SSL_CAFILE" in message and "not trusted" in message
    assert took < PROBE_TIMEOUT_S


def test_wrong_password_names_the_sasl_settings(secure_broker, tls_files):
    message, took = probe_error(sasl_ssl_env(secure_broker, tls_files, STREAM_TAGGER_SASL_PASSWORD="wrong"))
    assert "STREAM_TAGGER_SASL_PASSWORD" in message and SASL_USER in message
    assert took < PROBE_TIMEOUT_S


def test_plaintext_client_names_security_protocol(secure_broker, tls_files):
    message, took = probe_error({"STREAM_TAGGER_BROKERS": secure_broker.bootstrap})
    assert "STREAM_TAGGER_SECURITY_PROTOCOL" in message and "TLS listener" in message
    assert took < 2 * PROBE_TIMEOUT_S


def test_tls_client_without_login_on_a_sasl_listener_names_the_sasl_settings(secure_broker, tls_files):
    message, _ = probe_error({"STREAM_TAGGER_BROKERS": secure_broker.bootstrap, "STREAM_TAGGER_SECURITY_PROTOCOL": "SSL",
                              "STREAM_TAGGER_SSL_CAFILE": str(tls_files.cafile)})
    assert "requires SASL" in message and "STREAM_TAGGER_SASL_MECHANISM" in message


def test_tls_client_on_a_plaintext_listener_names_security_protocol(broker, tls_files):
    message, took = probe_error({"STREAM_TAGGER_BROKERS": broker.bootstrap, "STREAM_TAGGER_SECURITY_PROTOCOL": "SSL",
                                 "STREAM_TAGGER_SSL_CAFILE": str(tls_files.cafile)})
    assert "plaintext" in message and "STREAM_TAGGER_SECURITY_PROTOCOL" in message
    assert took < 3 * PROBE_TIMEOUT_S


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream_tagger.cli", *args], check=False, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)


def test_produce_over_sasl_ssl_and_its_clear_errors(secure_broker, tls_files, tmp_path: Path):
    # Given an input topic behind SASL_SSL and a file to announce
    topic = secure_broker.create_topic("secure.videos.new", 1)
    clip = tmp_path / "v-1.mp4"
    clip.write_bytes(b"not read by produce")
    env = sasl_ssl_env(secure_broker, tls_files, STREAM_TAGGER_INPUT_TOPIC=topic,
                       STREAM_TAGGER_KAFKA_CALL_TIMEOUT_MS=str(int(PROBE_TIMEOUT_S * 1000)))

    # When `stream-tagger produce` runs with the right settings, then with a wrong password and a wrong CA
    good = run_cli(["produce", str(clip)], env)
    bad_password = run_cli(["produce", str(clip)], {**env, "STREAM_TAGGER_SASL_PASSWORD": "nope"})
    bad_ca = run_cli(["produce", str(clip)], {**env, "STREAM_TAGGER_SSL_CAFILE": str(tls_files.other_cafile)})

    # Then the first is acknowledged and readable; the others exit 2 naming the setting, nothing sent
    assert good.returncode == 0, good.stderr[-2000:]
    assert json.loads(good.stdout.splitlines()[-1])["video_id"] == "v-1"
    assert bad_password.returncode == 2 and "STREAM_TAGGER_SASL_PASSWORD" in bad_password.stderr, bad_password.stderr
    assert bad_ca.returncode == 2 and "STREAM_TAGGER_SSL_CAFILE" in bad_ca.stderr, bad_ca.stderr
    consumer = KafkaConsumer(**secure_broker.client_config(enable_auto_commit=False))
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    records = [r for _ in range(20) for batch in consumer.poll(timeout_ms=200).values() for r in batch]
    consumer.close()
    assert [json.loads(r.value)["video_id"] for r in records] == ["v-1"]
